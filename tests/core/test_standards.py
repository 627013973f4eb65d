"""Check characters of GB 32100 and GB 11643, on values worked out by hand below."""

from __future__ import annotations

import pytest

from shuzhi.core.standards import (
    citizen_id_check,
    credit_code_check,
    is_citizen_id,
    is_credit_code,
    is_mobile,
)

# GB 32100 unified social credit code: 18 characters from 0-9 and A-Y without I O S V Z,
# valued 0..30 (A=10 ... H=17, J=18 ... N=22, P=23, Q=24, R=25, T=26, U=27, W=28, X=29,
# Y=30). Weights of positions 1..17 are 3^(i-1) mod 31:
#   1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
# The check character has value 31 - (sum mod 31), and 31 becomes 0.
#
# 91350100M000100Y4 (the example printed in the standard's commentary):
#   9*1 + 1*3 + 3*9 + 5*27 + 0 + 1*26 + 0 + 0 + M(21)*20 + 0 + 0 + 0 + 1*8 + 0 + 0
#   + Y(30)*30 + 4*28 = 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28; 31-28 = 3
CREDIT_DIGIT_CHECK = "91350100M000100Y43"
# 11100000000013127: 1*1 + 1*3 + 1*9 + 1*8 + 3*24 + 1*10 + 2*30 + 7*28 = 359;
#   359 mod 31 = 18; 31-18 = 13, the value of D
CREDIT_LETTER_CHECK = "11100000000013127D"
# A7000000000000000: A(10)*1 + 7*3 = 31; 31 mod 31 = 0; 31-0 = 31, which wraps to 0
CREDIT_WRAPPING_CHECK = "A70000000000000000"

# GB 11643 citizen ID: 6-digit region, 8-digit birth date, 3-digit sequence, and an
# ISO 7064 MOD 11-2 check: weights 2^(18-i) mod 11 for positions 1..17,
#   7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
# and the remainder r = sum mod 11 maps to the check character "10X98765432"[r].
#
# 11010519491231002 (the standard's own example):
#   7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2 -> X
CITIZEN_X_CHECK = "11010519491231002X"
# 33010619900307123:
#   3*7+3*9+0+1*5+0+6*4+1*2+9*1+9*6+0+0+3*9+0+7*5+1*8+2*4+3*2 = 226; 226 mod 11 = 6 -> 6
CITIZEN_DIGIT_CHECK = "330106199003071236"
# 33010619900307133: the sequence digit of weight 4 goes from 2 to 3, so 226 + 4 = 230;
#   230 mod 11 = 10 -> 2 (the last place of the table)
CITIZEN_LAST_PLACE_CHECK = "330106199003071332"
# 33010620000229123 (29 February 2000, a leap year): the birth digits 20000229 weigh
#   2*2+0*1+0*6+0*3+0*7+2*9+2*10+9*5 = 87 instead of 127 for 19900307, so
#   226 - 127 + 87 = 186; 186 mod 11 = 10 -> 2
CITIZEN_LEAP_DAY = "330106200002291232"
# The same with 1900, which is not a leap year: 19000229 weighs
#   1*2+9*1+0+0+0+2*9+2*10+9*5 = 94, so 226 - 127 + 94 = 193; 193 mod 11 = 6 -> 6
CITIZEN_NOT_LEAP = "330106190002291236"
# 30 February 1990: 0230 in place of 0307 weighs 0*7+2*9+3*10+0*5 = 48 instead of
#   0*7+3*9+0*10+7*5 = 62, so 226 - 62 + 48 = 212; 212 mod 11 = 3 -> 9
CITIZEN_FEB_30 = "330106199002301239"
# Month 13: 1307 weighs 1*7+3*9+0*10+7*5 = 69, so 226 - 62 + 69 = 233; 233 mod 11 = 2 -> X
CITIZEN_MONTH_13 = "33010619901307123X"


@pytest.mark.parametrize("code", [CREDIT_DIGIT_CHECK, CREDIT_LETTER_CHECK, CREDIT_WRAPPING_CHECK])
def test_credit_code_check_character(code: str) -> None:
    assert credit_code_check(code[:17]) == code[17]
    assert is_credit_code(code)


@pytest.mark.parametrize("code", [CREDIT_DIGIT_CHECK, CREDIT_LETTER_CHECK])
def test_credit_code_with_any_other_check_character_fails(code: str) -> None:
    for wrong in "0123456789ABCDEFGHJKLMNPQRTUWXY":
        if wrong != code[17]:
            assert not is_credit_code(code[:17] + wrong), wrong


@pytest.mark.parametrize(
    "value",
    [
        CREDIT_DIGIT_CHECK[:17],
        CREDIT_DIGIT_CHECK + "0",
        "",
        "91350100I000100Y43",  # I is not in the alphabet (confused with 1)
        "91350100O000100Y43",  # nor O (confused with 0)
        "91350100m000100Y43",  # lower case is not the standard's form
        "91350100M000100Y4 ",
    ],
)
def test_malformed_credit_codes_fail(value: str) -> None:
    assert not is_credit_code(value)


def test_a_transposition_changes_the_credit_code_check() -> None:
    swapped = (
        CREDIT_DIGIT_CHECK[:4]
        + CREDIT_DIGIT_CHECK[5]
        + CREDIT_DIGIT_CHECK[4]
        + (CREDIT_DIGIT_CHECK[6:])
    )
    assert swapped != CREDIT_DIGIT_CHECK
    assert not is_credit_code(swapped)


@pytest.mark.parametrize(
    "value",
    [CITIZEN_X_CHECK, CITIZEN_DIGIT_CHECK, CITIZEN_LAST_PLACE_CHECK, CITIZEN_LEAP_DAY],
)
def test_citizen_id_check_character(value: str) -> None:
    assert citizen_id_check(value[:17]) == value[17]
    assert is_citizen_id(value)


def test_citizen_id_accepts_a_lower_case_x() -> None:
    assert is_citizen_id(CITIZEN_X_CHECK.lower())


@pytest.mark.parametrize("value", [CITIZEN_X_CHECK, CITIZEN_DIGIT_CHECK, CITIZEN_LEAP_DAY])
def test_citizen_id_with_any_other_check_character_fails(value: str) -> None:
    for wrong in "0123456789X":
        if wrong != value[17]:
            assert not is_citizen_id(value[:17] + wrong), wrong


@pytest.mark.parametrize(
    "value",
    [
        CITIZEN_DIGIT_CHECK[:17],
        CITIZEN_DIGIT_CHECK + "0",
        CITIZEN_DIGIT_CHECK[:15],  # the old 15-digit form carries no check character
        "",
        "3301061990030712X6",  # X only in the last place
        "33010619900307 236",
        # full-width digits: int() reads them, the standard does not allow them
        "３３０１０６１９９００３０７１２３6",
        "²30106199003071236",  # a superscript is a digit to str.isdigit()
    ],
)
def test_citizen_id_of_the_wrong_shape_fails(value: str) -> None:
    assert not is_citizen_id(value)


@pytest.mark.parametrize("value", [CITIZEN_FEB_30, CITIZEN_MONTH_13, CITIZEN_NOT_LEAP])
def test_citizen_id_with_an_impossible_birth_date_fails(value: str) -> None:
    # the check character is right, so only the date can be what refuses it
    assert citizen_id_check(value[:17]) == value[17]
    assert not is_citizen_id(value)


@pytest.mark.parametrize("value", ["13812345678", "19912345678", "15000000000", "17700001111"])
def test_mobile_numbers(value: str) -> None:
    assert is_mobile(value)


@pytest.mark.parametrize(
    "value",
    [
        "12812345678",  # no mobile prefix starts 12
        "10012345678",
        "23812345678",
        "1381234567",  # ten digits
        "138123456789",  # twelve digits
        "+8613812345678",
        "138-1234-5678",
        "13812345678\n",
        "13８１２３４５６７８",  # full-width digits
        " 13812345678",
        "",
    ],
)
def test_not_mobile_numbers(value: str) -> None:
    assert not is_mobile(value)
