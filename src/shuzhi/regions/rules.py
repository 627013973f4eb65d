"""Region levels and code rules (GB/T 2260; towns use the 9-digit statistical code)."""

from __future__ import annotations

import re

from shuzhi.core.enums import LabeledEnum


class Level(LabeledEnum):
    province = ("province", "省", "province")
    city = ("city", "市", "city")
    county = ("county", "县", "county")
    town = ("town", "乡镇", "town")

    @property
    def depth(self) -> int:
        return list(Level).index(self)


CODE_PATTERN = {
    Level.province: re.compile(r"^\d{2}0000$"),
    Level.city: re.compile(r"^\d{4}00$"),
    Level.county: re.compile(r"^\d{6}$"),
    Level.town: re.compile(r"^\d{9}$|^\d{12}$"),
}


def code_problem(code: str, level: Level) -> str | None:
    if not CODE_PATTERN[level].match(code):
        return f"code {code!r} is not a valid {level.value} code"
    if level is Level.county and code.endswith("00"):
        return f"code {code!r} ends in 00, which GB/T 2260 keeps for cities"
    return None
