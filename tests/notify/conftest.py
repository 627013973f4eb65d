"""Fixtures of the notify tests: a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shuzhi.core import clock


@dataclass
class Frozen:
    """The time every shuzhi module sees until the test moves it."""

    moment: datetime

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def frozen() -> Iterator[Frozen]:
    held = Frozen(datetime.now(UTC).replace(microsecond=0))
    clock.set_clock(lambda: held.moment)
    try:
        yield held
    finally:
        clock.set_clock(None)
