"""Working days: deadlines that count only Monday to Friday.

The holiday calendar of the closed loop will extend this; until then weekends are the
only days off.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def add_working_days(start: datetime, days: int) -> datetime:
    """The same time of day, ``days`` working days after ``start``."""
    moment, left = start, days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment
