"""Working days: deadlines count Monday to Friday, minus public holidays, plus the
weekend days the State Council makes working days (调休上班).

The calendar is data (settings ``calendar.holidays`` and ``calendar.workdays``); the
national schedule of the current and previous year ships as the default, so a deadline
set before the Spring Festival does not fall due in the middle of it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache


def _span(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


# 国务院办公厅关于2025年、2026年部分节假日安排的通知
NATIONAL_HOLIDAYS: tuple[date, ...] = tuple(
    day
    for first, last in (
        ("2025-01-01", "2025-01-01"),
        ("2025-01-28", "2025-02-04"),
        ("2025-04-04", "2025-04-06"),
        ("2025-05-01", "2025-05-05"),
        ("2025-05-31", "2025-06-02"),
        ("2025-10-01", "2025-10-08"),
        ("2026-01-01", "2026-01-03"),
        ("2026-02-15", "2026-02-23"),
        ("2026-04-04", "2026-04-06"),
        ("2026-05-01", "2026-05-05"),
        ("2026-06-19", "2026-06-21"),
        ("2026-09-25", "2026-09-27"),
        ("2026-10-01", "2026-10-07"),
    )
    for day in _span(first, last)
)
NATIONAL_WORKDAYS: tuple[date, ...] = tuple(
    date.fromisoformat(day)
    for day in (
        "2025-01-26",
        "2025-02-08",
        "2025-04-27",
        "2025-09-28",
        "2025-10-11",
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    )
)


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add(self, start: date, days: int) -> date:
        """The day ``days`` working days after ``start`` (with 0, ``start`` or the next
        working day)."""
        moment, left = start, days
        while left > 0:
            moment += timedelta(days=1)
            left -= self.is_working_day(moment)
        while not self.is_working_day(moment):
            moment += timedelta(days=1)
        return moment

    def between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``; negative when ``end``
        comes first (how many working days an item is overdue). Whole weeks are counted
        at once and the calendar's exceptions looked up by bisection, so a deadline years
        away costs no more than one next week."""
        if end < start:
            return -self.between(end, start)
        days = (end - start).days
        weeks, rest = divmod(days, 7)
        count = weeks * 5 + sum(
            (start + timedelta(days=n)).weekday() < 5 for n in range(1, rest + 1)
        )
        off = self._sorted_holidays
        on = self._sorted_workdays
        first, last = start + timedelta(days=1), end
        count -= sum(
            day.weekday() < 5 for day in off[bisect_left(off, first) : bisect_right(off, last)]
        )
        count += sum(
            day.weekday() >= 5 for day in on[bisect_left(on, first) : bisect_right(on, last)]
        )
        return count

    @cached_property
    def _sorted_holidays(self) -> list[date]:
        return sorted(self.holidays - self.workdays)

    @cached_property
    def _sorted_workdays(self) -> list[date]:
        return sorted(self.workdays)


@lru_cache(maxsize=8)
def _calendar(holidays: tuple[date, ...], workdays: tuple[date, ...]) -> WorkCalendar:
    return WorkCalendar(frozenset(holidays), frozenset(workdays))


def calendar_of(holidays: Iterable[date], workdays: Iterable[date]) -> WorkCalendar:
    return _calendar(tuple(sorted(holidays)), tuple(sorted(workdays)))


def default() -> WorkCalendar:
    from shuzhi.core.settings import get_settings

    settings = get_settings().calendar
    return calendar_of(settings.holidays, settings.workdays)


def local_date(moment: datetime) -> date:
    """The date of ``moment`` where the government works (``calendar.timezone``)."""
    from zoneinfo import ZoneInfo

    from shuzhi.core.settings import get_settings

    return moment.astimezone(ZoneInfo(get_settings().calendar.timezone)).date()


def today() -> date:
    """Today's date where the government works, not in UTC: a deadline passes at local
    midnight."""
    from shuzhi.core import clock

    return local_date(clock.now())


def add_working_days(start: datetime, days: int, calendar: WorkCalendar | None = None) -> datetime:
    """The same time of day, ``days`` working days after ``start``."""
    calendar = calendar or default()
    moment, left = start, days
    while left > 0:
        moment += timedelta(days=1)
        if calendar.is_working_day(moment.date()):
            left -= 1
    return moment
