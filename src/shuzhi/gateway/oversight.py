"""What the access log tells an auditor: usage by resource, consumer, purpose and day, and
patterns worth a look, each flag saying why it was raised.

- **distinct lookups**: one consumer looked up more distinct records in a day (filters and
  verifications, counted by the keyed hash the log keeps) than
  ``gateway.flag_distinct_lookups``: someone may be walking through citizen IDs;
- **machine-regular**: at least ``gateway.flag_regular_calls`` calls in a day without a
  purpose, at nearly constant intervals: a script harvesting, not a clerk serving a case;
- **off hours**: ``gateway.flag_off_hours_calls`` or more calls outside working hours or
  on a weekend (``gateway.working_hours`` in ``gateway.timezone``).
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, false, func, or_, select, true
from sqlalchemy.orm import Session

from shuzhi.catalog.models import Resource
from shuzhi.core import clock
from shuzhi.core.permissions import Actor, allowed
from shuzhi.core.settings import Settings, get_settings
from shuzhi.gateway.models import AccessLog, Consumer
from shuzhi.gateway.queries import consumer_visible, held_on
from shuzhi.gateway.schemas import Flag, FlagList, UsageReport, UsageRow, UsageTotal

# a day of machine-regular calls: intervals whose spread is under this share of their mean
REGULAR_SPREAD = 0.1
WEEKDAYS = "一二三四五六日"


def _scope(actor: Actor):
    """Entries the actor may count: all with audit.read; otherwise its own consumers' calls
    and the calls on the resources its department provides."""
    if allowed(actor, "audit.read") or allowed(actor, "gateway.operate"):
        return true()
    own = select(Consumer.code).where(consumer_visible(actor))
    provided = select(Resource.code).where(
        or_(false(), *held_on(actor, ("gateway.decide",), Resource.provider_id))
    )
    return or_(AccessLog.consumer_code.in_(own), AccessLog.target.in_(provided))


def usage(
    session: Session,
    *,
    actor: Actor,
    days: int = 30,
    consumer: str | None = None,
    target: str | None = None,
) -> UsageReport:
    since = clock.now() - timedelta(days=days)
    day = cast(func.date(AccessLog.at), String)
    refused = func.sum(case((AccessLog.status >= 400, 1), else_=0))
    conditions = [AccessLog.at >= since, _scope(actor)]
    if consumer:
        conditions.append(AccessLog.consumer_code == consumer)
    if target:
        conditions.append(AccessLog.target == target)
    stmt = (
        select(
            day,
            AccessLog.consumer_code,
            AccessLog.target,
            AccessLog.purpose,
            func.count(),
            refused,
            func.sum(AccessLog.rows),
        )
        .where(and_(*conditions))
        .group_by(day, AccessLog.consumer_code, AccessLog.target, AccessLog.purpose)
        .order_by(day.desc(), AccessLog.consumer_code, AccessLog.target)
    )
    rows = [
        UsageRow(
            day=str(when)[:10],
            consumer=who,
            target=what,
            purpose=why,
            calls=calls,
            refused=int(bad or 0),
            rows=int(total or 0),
        )
        for when, who, what, why, calls, bad, total in session.execute(stmt)
    ]

    def totals(key: str) -> list[UsageTotal]:
        summed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in rows:
            name = getattr(row, key) or "-"
            summed[name][0] += row.calls
            summed[name][1] += row.refused
            summed[name][2] += row.rows
        return [
            UsageTotal(key=name, calls=calls, refused=bad, rows=total)
            for name, (calls, bad, total) in sorted(summed.items(), key=lambda item: -item[1][0])
        ]

    return UsageReport(
        since=since.date().isoformat(),
        rows=rows,
        by_consumer=totals("consumer"),
        by_target=totals("target"),
        by_day=sorted(totals("day"), key=lambda item: item.key),
    )


def flags(
    session: Session,
    *,
    actor: Actor,
    days: int = 14,
    settings: Settings | None = None,
) -> FlagList:
    settings = settings or get_settings()
    gateway = settings.gateway
    zone = ZoneInfo(gateway.timezone)
    since = clock.now() - timedelta(days=days)
    scope = [AccessLog.at >= since, AccessLog.consumer_code.is_not(None), _scope(actor)]
    found: list[Flag] = []

    # each consumer's calls, a local day at a time
    times: dict[tuple[str, str], list[tuple[datetime, bool]]] = defaultdict(list)
    lookups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for who, at, purpose, lookup in session.execute(
        select(AccessLog.consumer_code, AccessLog.at, AccessLog.purpose, AccessLog.lookup)
        .where(*scope)
        .order_by(AccessLog.consumer_code, AccessLog.at)
    ):
        local = at.astimezone(zone)
        key = (who, local.date().isoformat())
        times[key].append((local, bool(purpose)))
        if lookup:
            lookups[key].add(lookup)
    first, last = gateway.working_hours
    for (who, when), calls in sorted(times.items()):
        distinct = len(lookups.get((who, when), ()))
        if distinct > gateway.flag_distinct_lookups:
            found.append(
                Flag(
                    kind="distinct_lookups",
                    title="逐条查询大量不同记录",
                    consumer=who,
                    day=when,
                    calls=len(calls),
                    explanation=(
                        f"{distinct} distinct records looked up in {len(calls)} calls on "
                        f"{when}, more than the {gateway.flag_distinct_lookups} a day that "
                        "serving cases explains"
                    ),
                )
            )
        without_purpose = [at for at, has_purpose in calls if not has_purpose]
        if len(without_purpose) >= gateway.flag_regular_calls:
            gaps = [
                (later - earlier).total_seconds()
                for earlier, later in itertools.pairwise(without_purpose)
            ]
            mean = statistics.fmean(gaps)
            spread = statistics.pstdev(gaps)
            if mean > 0 and spread < REGULAR_SPREAD * mean:
                found.append(
                    Flag(
                        kind="machine_regular",
                        title="无事由的机器规律调用",
                        consumer=who,
                        day=when,
                        calls=len(without_purpose),
                        explanation=(
                            f"{len(without_purpose)} calls without a purpose on {when}, one "
                            f"every {mean:.0f} s ± {spread:.1f} s: a schedule, not a person "
                            "serving a case"
                        ),
                    )
                )
        outside = [at for at, _ in calls if at.weekday() >= 5 or not first <= at.hour < last]
        if len(outside) >= gateway.flag_off_hours_calls:
            weekend = calls[0][0].weekday() >= 5
            hours = sorted({at.hour for at in outside})
            found.append(
                Flag(
                    kind="off_hours",
                    title="非工作时间调用",
                    consumer=who,
                    day=when,
                    calls=len(outside),
                    explanation=(
                        f"{len(outside)} calls on {when} (星期{WEEKDAYS[calls[0][0].weekday()]})"
                        + (", a weekend" if weekend else f" outside {first:02d}:00–{last:02d}:00")
                        + f", in the hours {', '.join(f'{hour:02d}' for hour in hours)} "
                        f"({gateway.timezone})"
                    ),
                )
            )
    found.sort(key=lambda flag: (flag.day, flag.consumer, flag.kind), reverse=True)
    return FlagList(since=since.date().isoformat(), data=found)
