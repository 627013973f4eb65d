"""Problem lists at 100,000 problems: the list, board and statistics endpoints through the
real HTTP API, side by side with hand-written SQL on the same database, and the number of
SQL statements each request runs.

    .venv/bin/python bench/loop.py                        # SQLite, 100,000 problems
    .venv/bin/python bench/loop.py --postgres cluster     # and a throw-away PostgreSQL
    .venv/bin/python bench/loop.py --postgres postgresql+psycopg://user@host/empty_db
    .venv/bin/python bench/loop.py --variants --index state,deadline   # proposed changes
    .venv/bin/python bench/loop.py --repeat 5 --only red --explain red
    .venv/bin/python bench/loop.py --work DIR --profile offset   # keeps and reuses DIR

**Setup** (not timed): a throw-away data directory with a migrated store, the Zhejiang
regions, 66 departments (11 provincial, 5 in each of the 11 cities), a platform
administrator with an API token, 10 indicators, 3 (disabled) warning rules and 3,030
warnings, and ``--problems`` problems inserted in bulk through SQLAlchemy Core with
their final state, dates and closure figures: 9 channels, 7 systems, 90 counties, every
state, deadlines past and future, about 3,000 raised by a warning. A bulk INSERT of new
rows is setup, not a transition: ``Machine.guard`` refuses only assignments to a loaded
object's state and UPDATE statements. On PostgreSQL the store is VACUUM ANALYZEd after
the load (autovacuum would do it minutes later); SQLite is left as the product leaves it
(no ANALYZE: it did not change a plan here).

**Measured**, alternating, ``--repeat`` times each, medians:

- **API**: the request through uvicorn on 127.0.0.1 (in a thread of this process) with a
  keep-alive connection and the administrator's token: authentication, the route, the
  query function, the response model and JSON;
- **in process**: the same query function on a session of the same engine, its answer
  dumped to JSON: the API without HTTP and authentication;
- **hand-written SQL**: the same answer by one or two statements written by hand (a page
  and its count; the board's counts and all its cards; one aggregate for statistics) on
  a raw DB-API connection of the same engine, rows fetched, no objects: the baseline. A
  page is fetched as a deferred join (the page's ids first, then their names), which is
  what one writes by hand for deep offsets.

Both sides must give the same rows (ids in order, counts, lights, statistics) or the
run stops. Statements are counted with a ``before_cursor_execute`` listener on the
engine, per request (authentication included) and per query function; a list and a
board must run as many statements at page size 5 (1) as at 500 (200).

``--variants`` also times the statements of ``loop.queries`` against the change proposed
for each slow request (same session, same answer), and ``--index`` adds an index to
``loop_problem`` for the run only: what a migration would add, measured before it is.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import http.client
import json
import os
import pstats
import random
import shlex
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
SEED = 2366
ADMIN = "bench_admin"
CITY = "330100"  # 杭州市: the filtered page's city
TOKEN_NAME = "bench-loop"
CHANNELS = {
    "inspection": 12, "audit": 8, "patrol": 8, "safety": 12, "environment": 12,
    "petition": 18, "opinion": 10, "grassroots": 20,
}  # fmt: skip  # "warning" is the channel of the problems raised by a warning
SYSTEMS = {
    "party_building": 8, "digital_government": 22, "digital_economy": 14,
    "digital_society": 26, "digital_culture": 6, "digital_rule_of_law": 10, "grassroots": 14,
}  # fmt: skip
SEVERITIES = {"general": 70, "serious": 25, "major": 5}
PROVINCE_DEPARTMENTS = (
    ("zj_gat", "浙江省公安厅"), ("zj_wjw", "浙江省卫生健康委员会"),
    ("zj_zjt", "浙江省住房和城乡建设厅"), ("zj_sthjt", "浙江省生态环境厅"),
    ("zj_yjglt", "浙江省应急管理厅"), ("zj_jyt", "浙江省教育厅"), ("zj_mzt", "浙江省民政厅"),
    ("zj_jtyst", "浙江省交通运输厅"), ("zj_sjt", "浙江省审计厅"), ("zj_xfj", "浙江省信访局"),
    ("zj_dsj", "浙江省大数据发展管理局"),
)  # fmt: skip
# city departments: code suffix, name suffix, the provincial department above them
CITY_DEPARTMENTS = (
    ("gaj", "公安局", "zj_gat"), ("wjw", "卫生健康委员会", "zj_wjw"),
    ("zjj", "住房和城乡建设局", "zj_zjt"), ("sthjj", "生态环境局", "zj_sthjt"),
    ("yjglj", "应急管理局", "zj_yjglt"),
)  # fmt: skip
TOPICS = (
    "老旧小区加装电梯推进缓慢", "农贸市场周边占道经营", "河道排污口整治不到位",
    "学校周边交通秩序混乱", "企业安全生产隐患未整改", "12345热线工单超期未办结",
    "养老机构消防设施不达标", "建筑工地扬尘污染", "村级财务公开不及时",
    "政务服务事项网办率偏低", "医保报销材料重复提交", "城中村垃圾分类落实不到位",
    "危旧房屋排查不彻底", "停车收费标准公示不清", "惠企政策兑现周期过长",
    "网络舆情反映物业收费不规范", "食品经营许可审批超时", "基层网格员配备不足",
    "历史遗留信访积案化解缓慢", "数据共享接口长期不可用",
)  # fmt: skip
STATES = ("reported", "assigned", "rectifying", "closure_requested", "verified", "closed")
# state weights for problems reported more than 120 days ago, and for newer ones
OLD_STATES = (1, 1, 7, 3, 3, 85)
NEW_STATES = (7, 15, 40, 8, 5, 25)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load() -> float:
    return os.getloadavg()[0]


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# -- the data -------------------------------------------------------------------------------


def prepare(database: Any, problems: int, seed: int) -> str:
    """Migrate and fill ``database`` unless it holds this bench's problems already; a new
    API token of the platform administrator."""
    from sqlalchemy import func, select

    from shuzhi.core.permissions import SYSTEM
    from shuzhi.loop.models import Problem
    from shuzhi.orgs import service as orgs

    database.upgrade()
    with database.session() as session:
        found = session.scalar(select(func.count(Problem.id)).where(Problem.reported_by == "bench"))
    if found == problems:
        say(f"{database.backend}: reusing its {problems:,} problems")
    elif found:
        raise SystemExit(
            f"{database.backend}: the database holds {found:,} bench problems, not "
            f"{problems:,}; give an empty database (or another --work)"
        )
    else:
        started = time.perf_counter()
        fill(database, problems, seed)
        seconds = time.perf_counter() - started
        say(f"{database.backend}: {problems:,} problems made in {seconds:.1f} s")
    with database.transaction() as session:
        _token, plaintext = orgs.create_token(
            session, actor=SYSTEM, username=ADMIN, name=f"{TOKEN_NAME}-{time.time_ns()}"
        )
    return plaintext


def fill(database: Any, problems: int, seed: int) -> None:
    import csv

    from sqlalchemy import insert, select, text

    from shuzhi.brain.models import EarlyWarning, Indicator, Rule
    from shuzhi.core import clock
    from shuzhi.core.permissions import SYSTEM
    from shuzhi.loop.models import Problem
    from shuzhi.orgs import service as orgs
    from shuzhi.orgs.models import Department
    from shuzhi.orgs.schemas import DepartmentCreate, GrantCreate, UserCreate
    from shuzhi.regions import service as regions

    rng = random.Random(seed)
    with regions.builtin_csv().open(encoding="utf-8") as handle:
        tree = list(csv.DictReader(handle))
    cities = {row["code"]: row["name"] for row in tree if row["level"] == "city"}
    counties = [
        (row["code"], row["name"], row["parent"]) for row in tree if row["level"] == "county"
    ]
    with database.transaction() as session:
        orgs.sync_builtin_roles(session)
        regions.load_builtin(session, actor=SYSTEM)
        for code, name in PROVINCE_DEPARTMENTS:
            orgs.create_department(
                session, actor=SYSTEM, data=DepartmentCreate(code=code, name=name, region="330000")
            )
        for city, city_name in cities.items():
            for suffix, name, parent in CITY_DEPARTMENTS:
                orgs.create_department(
                    session,
                    actor=SYSTEM,
                    data=DepartmentCreate(
                        code=f"c{city}_{suffix}", name=f"{city_name}{name}", region=city,
                        parent=parent,
                    ),
                )  # fmt: skip
        orgs.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username=ADMIN,
                display_name="基准测试管理员",
                password=f"Bench-{rng.getrandbits(64):x}-Aa1",
                department="zj_dsj",
            ),
        )
        orgs.grant_role(
            session, actor=SYSTEM, username=ADMIN, data=GrantCreate(role="platform_admin")
        )
        ids = {code: id_ for code, id_ in session.execute(select(Department.code, Department.id))}
    provincial = [ids[code] for code, _ in PROVINCE_DEPARTMENTS]
    parent_of = {
        ids[f"c{city}_{suffix}"]: ids[parent]
        for city in cities
        for suffix, _, parent in CITY_DEPARTMENTS
    }
    now = clock.now()
    today = now.date()
    with database.engine.begin() as connection:
        indicators = connection.execute(
            insert(Indicator).returning(Indicator.id),
            [
                {"code": f"bench_indicator_{n:02d}", "name": f"基准指标{n:02d}", "name_en": "",
                 "system": list(SYSTEMS)[n % len(SYSTEMS)], "owner_id": provincial[n % 5],
                 "spec": {}, "version": 1, "created_at": now, "updated_at": now}
                for n in range(10)
            ],
        ).scalars().all()  # fmt: skip
        rules = connection.execute(
            insert(Rule).returning(Rule.id),
            [
                {"code": f"bench_rule_{n}", "name": f"基准规则{n}", "kind": "threshold",
                 "severity": ("low", "medium", "high")[n], "spec": {}, "enabled": False,
                 "version": 1, "created_at": now, "updated_at": now}
                for n in range(3)
            ],
        ).scalars().all()  # fmt: skip
        watched = list(cities) + [code for code, _, _ in counties]
        warning_rows = [
            {"rule_id": rule, "indicator_id": indicator, "region_code": region,
             "state": rng.choice(("firing", "firing", "recovering", "normal")),
             "bad_count": 0, "good_count": 0, "grain": "month",
             "message": "按期办结率低于目标值", "since": now, "updated_at": now}
            for rule in rules for indicator in indicators for region in watched
        ]  # fmt: skip
        warnings = connection.execute(
            insert(EarlyWarning).returning(
                EarlyWarning.id, EarlyWarning.indicator_id, EarlyWarning.region_code
            ),
            warning_rows,
        ).all()
        rows = [
            problem_row(number, rng, today, counties, ids, provincial, parent_of)
            for number in range(problems)
        ]
        # one problem of each warning's region (a city's: one of its counties' problems,
        # moved up to the city) was raised by the warning
        city_of = {code: city for code, _, city in counties}
        unlinked: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for row in rows:
            unlinked[row["region_code"]].append(row)
            unlinked[city_of[row["region_code"]]].append(row)
        for warning_id, indicator_id, region in warnings:
            pool = unlinked[region]
            while pool and pool[-1]["warning_id"] is not None:
                pool.pop()
            if pool:
                pool.pop().update(channel="warning", warning_id=warning_id,
                                  indicator_id=indicator_id, region_code=region)  # fmt: skip
        per_year: collections.Counter[int] = collections.Counter()
        for row in sorted(rows, key=lambda row: row["reported_at"]):
            year = row["reported_at"].year
            per_year[year] += 1
            row["code"] = f"WT-{year}-{per_year[year]:05d}"
        for first in range(0, len(rows), 10_000):
            connection.execute(insert(Problem), rows[first : first + 10_000])
    if database.backend == "postgresql":
        # what autovacuum does after a load, minutes later: planner statistics, and the
        # visibility map that lets counts read an index alone
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))


def problem_row(
    number: int,
    rng: random.Random,
    today: date,
    counties: list[tuple[str, str, str]],
    ids: dict[str, int],
    provincial: list[int],
    parent_of: dict[int, int],
) -> dict[str, Any]:
    county, county_name, city = rng.choice(counties)
    reported_at = datetime.combine(
        today - timedelta(days=rng.randint(0, 730)), datetime.min.time(), UTC
    ) + timedelta(hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
    age = (today - reported_at.date()).days
    state = rng.choices(STATES, weights=OLD_STATES if age > 120 else NEW_STATES)[0]
    topic = rng.choice(TOPICS)
    row: dict[str, Any] = {
        "code": "",
        "title": f"{county_name}{topic}",
        "description": f"{county_name}群众反映{topic}，涉及多个社区，需限期整改并报送佐证材料。",
        "channel": pick(rng, CHANNELS),
        "system": pick(rng, SYSTEMS),
        "region_code": county,
        "severity": pick(rng, SEVERITIES),
        "state": state,
        "department_id": None,
        "responsible_person": "",
        "co_departments": [],
        "measures": "",
        "deadline": None,
        "warning_id": None,
        "indicator_id": None,
        "evidence_count": 0,
        "rectifier_id": None,
        "escalation": 0,
        "escalated_to_id": None,
        "reported_at": reported_at,
        "reported_by": "bench",
        "assigned_at": None,
        "closed_at": None,
        "closed_on_time": None,
        "days_to_close": None,
        "updated_at": reported_at,
    }
    if state == "reported":
        return row
    if rng.random() < 0.75:
        suffix = rng.choice(CITY_DEPARTMENTS)[0]
        department = ids[f"c{city}_{suffix}"]
    else:
        department = rng.choice(provincial)
    deadline = reported_at.date() + timedelta(days=rng.randint(20, 120))
    row.update(
        department_id=department,
        responsible_person=f"责任人{number % 997:03d}",
        deadline=deadline,
        assigned_at=reported_at + timedelta(days=rng.randint(0, 3)),
        co_departments=rng.sample(provincial, rng.randint(1, 2)) if rng.random() < 0.2 else [],
    )
    row["updated_at"] = row["assigned_at"]
    if state != "assigned":
        row["measures"] = "制定整改方案，明确责任分工，按月报送进展。"
        row["evidence_count"] = rng.randint(1, 4) if state != "rectifying" else rng.randint(0, 2)
    if state == "closed":
        days = min(rng.randint(10, 150), max(age, 1))
        closed_at = reported_at + timedelta(days=days)
        row.update(
            closed_at=closed_at,
            days_to_close=days,
            closed_on_time=closed_at.date() <= deadline,
            updated_at=closed_at,
        )
    elif today > deadline and rng.random() < 0.3 and department in parent_of:
        row.update(escalation=1, escalated_to_id=parent_of[department])
    return row


# -- the cases ------------------------------------------------------------------------------


class Hand:
    """Hand-written SQL on a raw DB-API connection; ``?`` placeholders on both backends."""

    def __init__(self, database: Any) -> None:
        self.connection = database.engine.raw_connection()
        self.postgres = database.backend == "postgresql"

    def rows(self, sql: str, params: list[Any]) -> list[tuple]:
        cursor = self.connection.cursor()
        try:
            if self.postgres:
                cursor.execute(sql.replace("?", "%s"), params)
            else:
                cursor.execute(sql, [p.isoformat() if isinstance(p, date) else p for p in params])
            return cursor.fetchall()
        finally:
            cursor.close()

    def co_departments(self) -> str:
        if self.postgres:
            return (
                "(SELECT string_agg(c.code, ',') FROM jsonb_array_elements_text(p.co_departments)"
                " AS j(v) JOIN department c ON c.id = j.v::int)"
            )
        return (
            "(SELECT group_concat(c.code, ',') FROM json_each(p.co_departments) AS j"
            " JOIN department c ON c.id = j.value)"
        )

    def close(self) -> None:
        self.connection.close()


# what a ProblemPublic shows, the light included; overdue working days are left out
# (the working-day calendar is Python, not SQL)
COLUMNS = """p.id, p.code, p.title, p.description, p.channel, p.system, p.region_code, r.name,
  p.severity, p.state, d.code, d.name, p.responsible_person, {co}, p.measures, p.deadline,
  CASE WHEN p.state IN ('verified', 'closed') THEN 'green'
       WHEN p.deadline IS NOT NULL AND p.deadline < ? THEN 'red' ELSE 'yellow' END,
  p.closed_on_time, p.days_to_close, w.id, w.state, ru.code, wi.code, w.message, i.code, i.name,
  p.evidence_count, p.escalation, e.code, e.name, p.reported_at, p.reported_by, p.assigned_at,
  p.closed_at"""
JOINS = """JOIN region r ON r.code = p.region_code
  LEFT JOIN department d ON d.id = p.department_id
  LEFT JOIN department e ON e.id = p.escalated_to_id
  LEFT JOIN brain_warning w ON w.id = p.warning_id
  LEFT JOIN brain_rule ru ON ru.id = w.rule_id
  LEFT JOIN brain_indicator wi ON wi.id = w.indicator_id
  LEFT JOIN brain_indicator i ON i.id = p.indicator_id"""
# undated problems (reported, not yet assigned) last on both backends, as loop.queries does
ORDER = {
    "-reported": "p.reported_at DESC, p.id DESC",
    "deadline": "p.deadline IS NULL, p.deadline, p.id",
}
STATS_MEASURES = """count(*) AS n, sum(CASE WHEN state = 'closed' THEN 1 ELSE 0 END) AS closed,
  sum(CASE WHEN state IN ('reported', 'assigned', 'rectifying', 'closure_requested')
    AND deadline < ? THEN 1 ELSE 0 END) AS overdue,
  sum(CASE WHEN state = 'closed' AND closed_on_time = ? THEN 1 ELSE 0 END) AS on_time,
  sum(CASE WHEN state = 'closed' THEN days_to_close END) AS days,
  sum(CASE WHEN state = 'closed' AND days_to_close IS NOT NULL THEN 1 ELSE 0 END) AS with_days"""
GROUPED = "s.n, s.closed, s.overdue, s.on_time, s.days, s.with_days"


@dataclass
class Case:
    name: str
    path: str
    params: list[tuple[str, str]]
    run: Callable[[Any], str]  # in process: the query function's answer as JSON
    hand: Callable[[Hand], Any]
    same: Callable[[dict, Any], str | None]  # why the answers differ, or None
    figures: dict[str, Any] = field(default_factory=dict)


def cases(problems: int, today: date, city_path: str) -> list[Case]:
    from shuzhi.loop import queries
    from shuzhi.loop.schemas import ProblemList

    def listing(
        name: str,
        params: dict[str, Any],
        where: str,
        args: list[Any],
        *,
        sort: str = "-reported",
        limit: int = 50,
        offset: int = 0,
    ) -> Case:
        filters = queries.Filters(
            states=tuple(params.get("state", ())),
            region=params.get("region"),
            light=params.get("light"),
        )
        query = {**{k: v for k, v in params.items() if k != "state"}, "sort": sort,
                 "limit": limit, "offset": offset}  # fmt: skip
        pairs = [(key, str(value)) for key, value in query.items()]
        pairs += [("state", state) for state in params.get("state", ())]

        def run(session: Any) -> str:
            rows, count = queries.page_of(session, filters, limit=limit, offset=offset, sort=sort)
            return ProblemList(data=rows, count=count, limit=limit, offset=offset).model_dump_json()

        def hand(db: Hand) -> tuple[list[tuple], int]:
            order = ORDER[sort]
            page = db.rows(
                f"SELECT {COLUMNS.format(co=db.co_departments())} FROM (SELECT p.id FROM "
                f"loop_problem p WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) k "
                f"JOIN loop_problem p ON p.id = k.id {JOINS} ORDER BY {order}",
                [today, *args, limit, offset],
            )
            count = db.rows(f"SELECT count(*) FROM loop_problem p WHERE {where}", args)[0][0]
            return page, count

        def same(answer: dict, found: tuple[list[tuple], int]) -> str | None:
            page, count = found
            if answer["count"] != count:
                return f"count {answer['count']} against {count}"
            mine = [(row["id"], row["light"]) for row in answer["data"]]
            theirs = [(row[0], row[16]) for row in page]
            return None if mine == theirs else f"rows {mine[:3]}… against {theirs[:3]}…"

        return Case(name, "/api/v1/problems", pairs, run, hand, same)

    open_red = (
        "p.state IN ('reported', 'assigned', 'rectifying', 'closure_requested') AND p.deadline < ?"
    )
    found = [
        listing("list: first page", {}, "1 = 1", []),
        listing(
            f"list: region={CITY}, state=rectifying",
            {"region": CITY, "state": ["rectifying"]},
            "p.region_code IN (SELECT code FROM region WHERE path LIKE ?) AND p.state = ?",
            [city_path + "%", "rectifying"],
        ),
        listing("list: light=red", {"light": "red"}, open_red, [today]),
        listing(
            f"list: offset {max(problems - 1000, 0):,}",
            {},
            "1 = 1",
            [],
            offset=max(problems - 1000, 0),
        ),
        listing("list: sort=deadline", {}, "1 = 1", [], sort="deadline"),
    ]
    for by in ("department", "region", "channel", "system"):
        found.append(stats_case(by, today))
    found.append(board_case(today))
    return found


def stats_case(by: str, today: date) -> Case:
    from shuzhi.loop import queries

    def run(session: Any) -> str:
        return queries.stats(session, by=by, filters=queries.Filters()).model_dump_json()

    def hand(db: Hand) -> list[tuple]:
        params: list[Any] = [today, True]
        if by == "department":
            sql = (
                f"SELECT d.code, d.name, {GROUPED} FROM (SELECT department_id, {STATS_MEASURES} "
                "FROM loop_problem GROUP BY department_id) s "
                "LEFT JOIN department d ON d.id = s.department_id"
            )
        elif by == "region":
            # by county first, then the counties folded into the province's cities
            sql = (
                "SELECT c.code, c.name, sum(s.n), sum(s.closed), sum(s.overdue), sum(s.on_time), "
                f"sum(s.days), sum(s.with_days) FROM (SELECT region_code, {STATS_MEASURES} "
                "FROM loop_problem GROUP BY region_code) s "
                "JOIN region r ON r.code = s.region_code "
                "JOIN region c ON c.code = substr(r.path, 9, 6) GROUP BY c.code, c.name"
            )
        else:
            sql = f"SELECT {by}, {by}, {STATS_MEASURES} FROM loop_problem GROUP BY {by}"
        return db.rows(sql, params)

    def same(answer: dict, rows: list[tuple]) -> str | None:
        mine = {
            row["key"]: (row["total"], row["closed"], row["overdue"], row["on_time_rate"],
                         row["average_days"])
            for row in answer["data"]
        }  # fmt: skip
        theirs = {}
        for key, _name, *rest in rows:
            total, closed, overdue, on_time, days, with_days = (int(v or 0) for v in rest)
            theirs[key or "-"] = (
                total,
                closed,
                overdue,
                round(on_time / closed, 4) if closed else None,
                round(days / with_days, 1) if with_days else None,
            )
        return (
            None
            if mine == theirs
            else f"{sorted(mine.items())[:2]} against {sorted(theirs.items())[:2]}"
        )

    return Case(f"stats: by={by}", "/api/v1/problems/stats", [("by", by)], run, hand, same)


def board_case(today: date, per_state: int = 20) -> Case:
    from shuzhi.loop import queries

    def run(session: Any) -> str:
        return queries.board(session, queries.Filters(), per_state=per_state).model_dump_json()

    def hand(db: Hand) -> tuple[dict, list[tuple]]:
        counts = dict(db.rows("SELECT state, count(*) FROM loop_problem GROUP BY state", []))
        # the reported column (no deadlines yet) shows the newest first
        union = " UNION ALL ".join(
            f"SELECT id, {n} AS k FROM (SELECT id FROM loop_problem WHERE state = ? ORDER BY "
            + ("reported_at DESC, id DESC" if state == "reported" else "deadline, id")
            + f" LIMIT ?) s{n}"
            for n, state in enumerate(STATES)
        )
        cards = db.rows(
            f"SELECT {COLUMNS.format(co=db.co_departments())} FROM ({union}) k "
            f"JOIN loop_problem p ON p.id = k.id {JOINS} ORDER BY k.k, "
            "CASE WHEN k.k = 0 THEN p.reported_at END DESC, "
            "CASE WHEN k.k = 0 THEN p.id END DESC, p.deadline, p.id",
            [today, *(item for state in STATES for item in (state, per_state))],
        )
        return counts, cards

    def same(answer: dict, found: tuple[dict, list[tuple]]) -> str | None:
        counts, cards = found
        for column in answer["columns"]:
            state = column["state"]
            theirs = [row[0] for row in cards if row[9] == state]
            if column["count"] != counts.get(state, 0):
                return f"{state}: count {column['count']} against {counts.get(state, 0)}"
            if [card["id"] for card in column["data"]] != theirs:
                return f"{state}: cards differ"
        return None

    return Case(
        f"board ({per_state} cards a state)",
        "/api/v1/problems/board",
        [("per_state", str(per_state))],
        run,
        hand,
        same,
    )


# -- the server and the counting ------------------------------------------------------------


class Statements:
    """SQL statements run on an engine, counted (and kept, when asked)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.count = 0
        self.keep: list[tuple[str, Any]] | None = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.count += 1
        if self.keep is not None:
            self.keep.append((statement, params))

    def reset(self) -> None:
        self.count = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """uvicorn on 127.0.0.1 in a thread of this process, so its statements are counted."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=600,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path: str, params: list[tuple[str, str]]) -> tuple[float, bytes]:
        target = f"{path}?{urlencode(params)}" if params else path
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.connection.request("GET", target, headers=self.headers)
                response = self.connection.getresponse()
                body = response.read()
                seconds = time.perf_counter() - started
                break
            except (http.client.RemoteDisconnected, ConnectionResetError):
                # a keep-alive connection closed under us: once more on a new one
                if attempt == 2:
                    raise
                say(f"GET {target}: the connection was closed; again on a new one")
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        if response.status != 200:
            raise SystemExit(f"GET {target}: {response.status} {body[:300]!r}")
        return seconds, body


# -- measuring ------------------------------------------------------------------------------


def measure(database: Any, token: str, options: argparse.Namespace) -> dict[str, Any]:
    from shuzhi.core import clock
    from shuzhi.regions.models import Region
    from shuzhi.server import create_app

    today = clock.now().date()
    with database.session() as session:
        city_path = session.get(Region, CITY).path
    chosen = cases(options.problems, today, city_path)
    if options.only:
        chosen = matching(chosen, options.only)
    app = create_app(database=database)
    statements = Statements(database.engine)
    hand = Hand(database)
    started_load = load()
    with serving(app) as port:
        client = Client(port, token)
        floor = [client.get("/healthz", [])[0] for _ in range(max(options.repeat, 5) * 4)]
        for case in chosen:
            measure_case(case, database, client, hand, statements, options.repeat)
        sizes = page_sizes(client, statements)
    hand.close()
    found = {
        "backend": database.backend,
        "problems": options.problems,
        "repeat": options.repeat,
        "healthz_ms": 1000 * median(floor),
        "cases": [
            {"name": case.name, "path": case.path, "params": case.params, **case.figures}
            for case in chosen
        ],
        "page_sizes": sizes,
        "load": (started_load, load()),
    }
    if options.variants:
        found["variants"] = variants(database, options.problems, options.repeat)
    if options.explain:
        found["explain"] = explain(database, chosen, options.explain, statements)
    if options.profile:
        profile(database, chosen, options.profile, options.repeat)
    return found


def measure_case(
    case: Case, database: Any, client: Client, hand: Hand, statements: Statements, repeat: int
) -> None:
    """The three sides in turn (the order alternating), after one warm-up run of each."""
    times: dict[str, list[float]] = {"api": [], "in_process": [], "hand": []}
    counted: dict[str, list[int]] = {"api": [], "in_process": []}
    answers: dict[str, Any] = {}

    def over_http() -> None:
        statements.reset()
        seconds, answers["api"] = client.get(case.path, case.params)
        times["api"].append(seconds)
        counted["api"].append(statements.count)

    def in_process() -> None:
        statements.reset()
        with database.session() as session:
            started = time.perf_counter()
            case.run(session)
            times["in_process"].append(time.perf_counter() - started)
        counted["in_process"].append(statements.count)

    def hand_written() -> None:
        started = time.perf_counter()
        answers["hand"] = case.hand(hand)
        times["hand"].append(time.perf_counter() - started)

    sides = {"api": over_http, "in_process": in_process, "hand": hand_written}
    for side in sides.values():
        side()
    for kept in (*times.values(), *counted.values()):
        kept.clear()
    for rep in range(repeat):
        for name in list(sides) if rep % 2 == 0 else list(reversed(sides)):
            sides[name]()
    answer = json.loads(answers["api"])
    differs = case.same(answer, answers["hand"])
    if differs:
        raise SystemExit(f"{database.backend}: {case.name}: the answers differ: {differs}")
    api = times["api"]
    case.figures.update(
        api_ms=1000 * median(api),
        api_min_ms=1000 * min(api),
        api_max_ms=1000 * max(api),
        in_process_ms=1000 * median(times["in_process"]),
        hand_ms=1000 * median(times["hand"]),
        statements_request=collections.Counter(counted["api"]).most_common(1)[0][0],
        statements_request_range=(min(counted["api"]), max(counted["api"])),
        statements_function=collections.Counter(counted["in_process"]).most_common(1)[0][0],
        rows=_rows_of(answer),
    )
    say(
        f"{database.backend}: {case.name}: API {case.figures['api_ms']:.1f} ms, in process "
        f"{case.figures['in_process_ms']:.1f} ms, hand-written {case.figures['hand_ms']:.1f} ms"
    )


def _rows_of(answer: dict) -> str:
    if "count" in answer:
        return f"{len(answer['data'])} of {answer['count']:,}"
    if "columns" in answer:
        return f"{sum(len(c['data']) for c in answer['columns'])} cards"
    return f"{len(answer['data'])} groups"


def page_sizes(client: Client, statements: Statements) -> list[dict[str, Any]]:
    """Statements per request at a small and a large page: equal, or there is an N+1."""
    found = []
    for label, path, key, small, large, extra in (
        ("list", "/api/v1/problems", "limit", 5, 500, []),
        ("list, light=red", "/api/v1/problems", "limit", 5, 500, [("light", "red")]),
        ("board", "/api/v1/problems/board", "per_state", 1, 200, []),
    ):
        counts = []
        for size in (small, large):
            client.get(path, [(key, str(size)), *extra])  # a token touch, if due, is not counted
            statements.reset()
            client.get(path, [(key, str(size)), *extra])
            counts.append(statements.count)
        found.append({"request": label, "size": key, "small": small, "large": large,
                      "statements": counts})  # fmt: skip
    return found


def matching(chosen: list[Case], name: str) -> list[Case]:
    picked = [case for case in chosen if name.lower() in case.name.lower()]
    if not picked:
        raise SystemExit(f"no case matches {name!r}: {', '.join(c.name for c in chosen)}")
    return picked


def explain(database: Any, chosen: list[Case], name: str, statements: Statements) -> list[str]:
    """The plan of every statement the query function of the matching cases runs."""
    shown = []
    for case in matching(chosen, name):
        statements.keep = []
        with database.session() as session:
            case.run(session)
        kept, statements.keep = statements.keep, None
        raw = database.engine.raw_connection()
        try:
            for statement, params in kept:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                cursor = raw.cursor()
                prefix = (
                    "EXPLAIN QUERY PLAN " if database.backend == "sqlite" else "EXPLAIN ANALYZE "
                )
                cursor.execute(prefix + statement, params)
                plan = "\n".join(" | ".join(str(part) for part in row) for row in cursor.fetchall())
                cursor.close()
                text = f"-- {case.name}\n{statement}\n{params}\n{plan}\n"
                print(text)
                shown.append(text)
        finally:
            raw.close()
    return shown


def profile(database: Any, chosen: list[Case], name: str, repeat: int) -> None:
    for case in matching(chosen, name):
        profiler = cProfile.Profile()
        for _ in range(repeat):
            with database.session() as session:
                profiler.enable()
                case.run(session)
                profiler.disable()
        print(f"\nProfile of {case.name}, in process, {repeat} runs:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)


# -- proposed changes -----------------------------------------------------------------------


@contextlib.contextmanager
def extra_indexes(database: Any, specs: list[str]) -> Iterator[list[str]]:
    """Indexes on loop_problem that the migrations do not make, for the length of a run
    (``--index state,deadline``): what one would add, measured before it is added."""
    from sqlalchemy import text

    from shuzhi.loop.models import Problem

    made = []
    try:
        for spec in specs:
            columns = [name.strip() for name in spec.split(",") if name.strip()]
            unknown = set(columns) - set(Problem.__table__.c.keys())
            if not columns or unknown:
                raise SystemExit(f"--index {spec!r}: unknown columns {sorted(unknown)}")
            name = "ix_bench_" + "_".join(columns)
            with database.engine.begin() as connection:
                connection.execute(
                    text(f"CREATE INDEX {name} ON loop_problem ({', '.join(columns)})")
                )
                if database.backend == "postgresql":
                    connection.execute(text("ANALYZE loop_problem"))
            made.append(name)
            say(f"{database.backend}: index {name} added for this run")
        yield made
    finally:
        with database.engine.begin() as connection:
            for name in made:
                connection.execute(text(f"DROP INDEX {name}"))


def variants(database: Any, problems: int, repeat: int) -> list[dict[str, Any]]:
    """The statements of ``loop.queries`` as they are, against the change proposed for
    each slow request, on the same session; both must give the same answer."""
    from sqlalchemy import and_, case, func, select

    from shuzhi.core import clock
    from shuzhi.loop import queries
    from shuzhi.loop.models import Problem
    from shuzhi.loop.rules import DONE_STATES, PROBLEM
    from shuzhi.loop.schemas import Board, BoardColumn

    today = clock.now().date()
    offset = max(problems - 1000, 0)
    newest = queries.SORTS["-reported"]
    not_done = [code for code in PROBLEM.states if code not in DONE_STATES]
    red = and_(Problem.state.in_(not_done), Problem.deadline.is_not(None),
               Problem.deadline < today)  # fmt: skip

    def ids(rows: list[Any]) -> list[int]:
        return [row.id for row in rows]

    def first_as_is(session: Any) -> Any:
        rows, count = queries.search(session, queries.Filters(), limit=50)
        return ids(rows), count

    def first_count_star(session: Any) -> Any:
        count = session.scalar(select(func.count()).select_from(Problem))
        rows = session.scalars(select(Problem).order_by(*newest).limit(50)).unique()
        return ids(list(rows)), count

    def red_as_is(session: Any) -> Any:
        rows, count = queries.search(session, queries.Filters(light="red"), limit=50)
        return ids(rows), count

    def red_listed(session: Any) -> Any:
        count = session.scalar(select(func.count(Problem.id)).where(red))
        rows = session.scalars(select(Problem).where(red).order_by(*newest).limit(50)).unique()
        return ids(list(rows)), count

    def deep_as_is(session: Any) -> Any:
        rows, count = queries.search(session, queries.Filters(), limit=50, offset=offset)
        return ids(rows), count

    def deep_deferred(session: Any) -> Any:
        count = session.scalar(select(func.count(Problem.id)))
        # joined, not IN (…): PostgreSQL plans an IN as a semi-join after all the joins
        page = select(Problem.id).order_by(*newest).limit(50).offset(offset).subquery()
        rows = session.scalars(
            select(Problem).join(page, page.c.id == Problem.id).order_by(*newest)
        ).unique()
        return ids(list(rows)), count

    def board_as_is(session: Any) -> Any:
        return queries.board(session, queries.Filters(), per_state=20).model_dump()

    def board_counted_once(session: Any) -> Any:
        counts = queries.state_counts(session, queries.Filters())
        names = queries.Names(session)
        columns = []
        for code, state in PROBLEM.states.items():
            rows: list[Any] = []
            if counts.get(code):
                rows = list(
                    session.scalars(
                        select(Problem).where(Problem.state == code)
                        .order_by(*queries.SORTS["-reported" if code == "reported"
                                                 else "deadline"]).limit(20)
                    ).unique()
                )  # fmt: skip
            cards = [queries.public(problem, names, today=today) for problem in rows]
            columns.append(BoardColumn(state=code, label=state.label(), count=counts.get(code, 0),
                                       data=cards))  # fmt: skip
        return Board(columns=columns).model_dump()

    def by_department(session: Any, key: Any) -> Any:
        closed = Problem.state == "closed"
        found = session.execute(
            select(key, func.count(Problem.id),
                   func.sum(case((closed, 1), else_=0)),
                   func.avg(case((closed, Problem.days_to_close), else_=None)))
            .group_by(key)
        ).all()  # fmt: skip
        return sorted((tuple(row) for row in found), key=lambda row: (row[0] is None, row[0] or 0))

    pairs: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = [
        ("first page: count(loop_problem.id) → count(*)", first_as_is, first_count_star),
        ("light=red: state NOT IN (verified, closed) → state IN (the four others)",
         red_as_is, red_listed),
        (f"offset {offset:,}: joined rows for every skipped row → the page's ids first",
         deep_as_is, deep_deferred),
        ("board: a count per column again → the counts of the first statement",
         board_as_is, board_counted_once),
    ]  # fmt: skip
    if database.backend == "sqlite":
        pairs.append(
            ("stats by department, SQLite: GROUP BY department_id → GROUP BY department_id + 0",
             lambda s: by_department(s, Problem.department_id),
             lambda s: by_department(s, Problem.department_id + 0))
        )  # fmt: skip
    found = []
    for label, as_is, proposed in pairs:
        times: dict[str, list[float]] = {"as_is": [], "proposed": []}
        answers: dict[str, Any] = {}
        for rep in range(repeat + 1):
            order = [("as_is", as_is), ("proposed", proposed)]
            for side, action in order if rep % 2 == 0 else reversed(order):
                with database.session() as session:
                    started = time.perf_counter()
                    answers[side] = action(session)
                    if rep:  # the first round warms up
                        times[side].append(time.perf_counter() - started)
        if answers["as_is"] != answers["proposed"]:
            raise SystemExit(f"{database.backend}: {label}: the answers differ")
        found.append({"change": label, "as_is_ms": 1000 * median(times["as_is"]),
                      "proposed_ms": 1000 * median(times["proposed"])})  # fmt: skip
        say(f"{database.backend}: {label}: {found[-1]['as_is_ms']:.1f} → "
            f"{found[-1]['proposed_ms']:.1f} ms")  # fmt: skip
    return found


# -- the table ------------------------------------------------------------------------------


def table(found: dict[str, Any]) -> None:
    extra = f", extra index {', '.join(found['indexes'])}" if found.get("indexes") else ""
    print(
        f"\n{found['backend']}{extra}, {found['problems']:,} problems, median of {found['repeat']} "
        f"(GET /healthz over the same connection: {found['healthz_ms']:.2f} ms; load "
        f"{found['load'][0]:.2f} → {found['load'][1]:.2f})\n"
    )
    print("| request | rows | API ms (min–max) | in process ms | hand-written SQL ms "
          "| API / SQL | statements per request (query function) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for case in found["cases"]:
        low, high = case["statements_request_range"]
        varied = f", {low}–{high}" if low != high else ""
        print(
            f"| {case['name']} | {case['rows']} | {case['api_ms']:.1f} "
            f"({case['api_min_ms']:.1f}–{case['api_max_ms']:.1f}) | {case['in_process_ms']:.1f} | "
            f"{case['hand_ms']:.1f} | {case['api_ms'] / case['hand_ms']:.1f} | "
            f"{case['statements_request']}{varied} ({case['statements_function']}) |"
        )
    print("\n| request | page size | statements per request |")
    print("|---|---|---|")
    for size in found["page_sizes"]:
        small, large = size["statements"]
        verdict = "" if small == large else " **differs: N+1**"
        print(f"| {size['request']} | {size['size']} {size['small']} → {size['large']} | "
              f"{small} → {large}{verdict} |")  # fmt: skip
    if found.get("variants"):
        print("\n| proposed change (query function statements only) | as is ms | proposed ms |")
        print("|---|---|---|")
        for row in found["variants"]:
            print(f"| {row['change']} | {row['as_is_ms']:.1f} | {row['proposed_ms']:.1f} |")


# -- main -----------------------------------------------------------------------------------


def start_cluster(work: Path) -> tuple[Any, str]:
    sys.path.insert(0, str(ROOT))
    try:
        from tests.support.pgcluster import PgCluster, find_pg_bin
    except ImportError as exc:
        raise SystemExit(f"--postgres cluster needs the tests' PgCluster helper: {exc}") from None
    if find_pg_bin() is None:
        raise SystemExit("--postgres cluster: PostgreSQL's initdb and pg_ctl were not found")
    cluster = PgCluster(work / "pg")
    cluster.start()
    return cluster, cluster.create_database("shuzhi_bench")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15, help="runs of each side (15)")
    parser.add_argument(
        "--postgres",
        metavar="URL|cluster",
        help="also PostgreSQL: the URL of an empty database, or 'cluster' for a throw-away one",
    )
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false")
    parser.add_argument("--only", metavar="CASE", help="only the cases whose name has this")
    parser.add_argument("--explain", metavar="CASE", help="plans of a case's statements")
    parser.add_argument("--profile", metavar="CASE", help="cProfile of a case's query function")
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="COLUMNS",
        help="an index on loop_problem(COLUMNS) for this run only, e.g. state,deadline",
    )
    parser.add_argument(
        "--variants", action="store_true", help="also time the changes proposed to queries"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--work", type=Path, help="kept, its SQLite store reused")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    work = (options.work or Path(tempfile.mkdtemp(prefix="shuzhi-bench-loop-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    os.environ["SHUZHI_DATA_DIR"] = str(data_dir)
    os.environ["SHUZHI_LOG__LEVEL"] = "WARNING"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say(f"work directory {work}; load average {load():.2f}; {os.cpu_count()} cores")

    from shuzhi.core.db import Database
    from shuzhi.core.settings import get_settings

    settings = get_settings()
    cluster = None
    results = []
    try:
        urls = []
        if options.sqlite:
            urls.append(f"sqlite:///{data_dir / f'loop-{options.problems}.db'}")
        if options.postgres == "cluster":
            cluster, url = start_cluster(work)
            urls.append(url)
        elif options.postgres:
            urls.append(options.postgres)
        for url in urls:
            database = Database(url, settings=settings)
            token = prepare(database, options.problems, options.seed)
            with extra_indexes(database, options.index) as made:
                found = measure(database, token, options)
            found["indexes"] = made
            database.dispose()
            table(found)
            results.append(found)
    finally:
        if cluster is not None:
            cluster.stop()
        if options.json:
            options.json.write_text(json.dumps(results, indent=2, default=str))
        if options.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nReproduce: .venv/bin/python bench/loop.py {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
