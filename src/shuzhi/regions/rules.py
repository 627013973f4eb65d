"""Region levels and code rules (GB/T 2260; towns use the 9-digit statistical code)."""

from __future__ import annotations

import re
import unicodedata

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


NAME_MAX_LENGTH = 60  # the width of region.name

SIGNIFICANT_DIGITS = {Level.province: 2, Level.city: 4, Level.county: 6, Level.town: 9}


def parent_problem(code: str, parent: str, parent_level: Level) -> str | None:
    """GB/T 2260 codes nest: a child's code starts with its parent's significant digits."""
    prefix = parent[: SIGNIFICANT_DIGITS[parent_level]]
    if not code.startswith(prefix):
        return f"code {code} does not start with {prefix}, the prefix of its parent {parent}"
    return None


def name_problem(code: str, name: str) -> str | None:
    if not name:
        return f"region {code} has no name"
    if len(name) > NAME_MAX_LENGTH:
        return f"the name of region {code} is {len(name)} characters; at most {NAME_MAX_LENGTH}"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return f"the name of region {code} holds a control character"
    return None


def code_problem(code: str, level: Level) -> str | None:
    if not CODE_PATTERN[level].match(code):
        return f"code {code!r} is not a valid {level.value} code"
    if level is Level.county and code.endswith("00"):
        return f"code {code!r} ends in 00, which GB/T 2260 keeps for cities"
    return None
