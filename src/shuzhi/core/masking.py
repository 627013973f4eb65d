"""Display masking: what a person may see of a personal value, as government systems show it.

A citizen ID keeps its first six characters (the issuing region) and its last four, a
mobile its first three and last four digits, a Chinese name its surname, a bank card its
last four digits, an address everything up to the district; any other value a little of
each end, so a reader recognises the kind of value and never the value.
"""

from __future__ import annotations

import re

# the first county-level unit of an address: 区, 县, 旗, or a county-level 市 after a city
_DISTRICT = re.compile(r"^.{2,}?(?:区|县|旗)|^.{2,}?市.{1,}?市")


def mask(value: str, kind: str | None = None) -> str:
    if kind == "id_card" and len(value) >= 15:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    if kind == "name":
        return value[:1] + "*" * max(len(value) - 1, 1)
    if kind == "address":
        match = _DISTRICT.match(value)
        kept = match.group(0) if match else value[:6]
        return kept + "****" if len(value) > len(kept) else "*" * len(value)
    if kind == "phone" and len(value) == 11:
        return value[:3] + "****" + value[-4:]
    if kind == "bank_card" and len(value) >= 8:
        return "*" * (len(value) - 4) + value[-4:]
    if "@" in value:
        name, _, domain = value.partition("@")
        return name[:1] + "***@" + domain
    if len(value) <= 4:
        return "*" * len(value)
    keep = 3 if len(value) < 11 else 4
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]
