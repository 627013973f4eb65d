"""Check characters of the national identifier standards."""

from __future__ import annotations

import re
from datetime import date

CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CITIZEN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CITIZEN_ID_CHECK = "10X98765432"
MOBILE = re.compile(r"1[3-9][0-9]{9}")


def credit_code_check(first17: str) -> str:
    """GB 32100: the check character of a unified social credit code."""
    total = sum(
        CREDIT_CODE_CHARS.index(char) * weight
        for char, weight in zip(first17, CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31]


def is_credit_code(value: str) -> bool:
    if len(value) != 18 or any(char not in CREDIT_CODE_CHARS for char in value):
        return False
    return credit_code_check(value[:17]) == value[17]


def citizen_id_check(first17: str) -> str:
    """GB 11643: the ISO 7064 MOD 11-2 check character of a citizen ID."""
    total = sum(
        int(char) * weight for char, weight in zip(first17, CITIZEN_ID_WEIGHTS, strict=True)
    )
    return CITIZEN_ID_CHECK[total % 11]


def is_citizen_id(value: str) -> bool:
    # isdigit() alone lets full-width and superscript digits through
    if len(value) != 18 or not (value[:17].isascii() and value[:17].isdigit()):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return citizen_id_check(value[:17]) == value[17].upper()


def is_mobile(value: str) -> bool:
    return bool(MOBILE.fullmatch(value))
