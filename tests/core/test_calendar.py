"""Working days: the national holiday schedule, 调休 workdays, and counting both ways."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from shuzhi.core import calendar, clock
from shuzhi.core.calendar import WorkCalendar
from shuzhi.core.enums import Light
from shuzhi.core.workflow import deadline_light


def test_the_spring_festival_and_its_working_saturdays() -> None:
    days = calendar.default()
    assert not days.is_working_day(date(2026, 2, 16))  # the festival
    assert days.is_working_day(date(2026, 2, 14))  # a Saturday made a working day
    assert not days.is_working_day(date(2026, 2, 7))  # an ordinary Saturday
    assert days.add(date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert days.add(date(2026, 2, 14), 1) == date(2026, 2, 24)
    assert days.add(date(2026, 2, 15), 0) == date(2026, 2, 24)  # 0 days: the next working day
    assert days.between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert days.between(date(2026, 2, 24), date(2026, 2, 13)) == -2


def test_counting_by_weeks_agrees_with_counting_day_by_day() -> None:
    days = calendar.default()

    def one_by_one(start: date, end: date) -> int:
        if end < start:
            return -one_by_one(end, start)
        return sum(
            days.is_working_day(start + timedelta(n)) for n in range(1, (end - start).days + 1)
        )

    pick = random.Random(11)
    for _ in range(2000):
        start = date(2024, 9, 1) + timedelta(days=pick.randrange(900))
        end = start + timedelta(days=pick.randrange(-500, 500))
        assert days.between(start, end) == one_by_one(start, end), (start, end)


def test_a_plain_calendar_has_only_weekends() -> None:
    plain = WorkCalendar()
    assert plain.add(date(2026, 10, 1), 1) == date(2026, 10, 2)
    assert plain.between(date(2026, 9, 25), date(2026, 10, 2)) == 5


def test_today_is_the_date_in_beijing() -> None:
    clock.set_clock(lambda: datetime(2026, 3, 16, 17, 30, tzinfo=UTC))  # 01:30 on the 17th
    try:
        assert calendar.today() == date(2026, 3, 17)
    finally:
        clock.set_clock(None)


def test_deadline_lights() -> None:
    days, today = calendar.default(), date(2026, 3, 10)

    def light(deadline: date | None, *, done: bool = False, open_light: Light = Light.green) -> str:
        return deadline_light(deadline, today, done=done, warn_days=3, calendar=days,
                              open_light=open_light).value  # fmt: skip

    assert light(date(2026, 3, 9)) == "red"
    assert light(date(2026, 3, 9), done=True) == "green"
    assert light(date(2026, 3, 13)) == "yellow"  # three working days ahead
    assert light(date(2026, 3, 16)) == "green"  # four
    assert light(date(2026, 3, 16), open_light=Light.yellow) == "yellow"
    assert light(None) == "green"
