"""transforms.money: half-up rounding to the centime in integers, and French MAD formatting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transforms.money import apply_rate, exact_row_sums, format_mad, prorate

NNBSP = "\u202f"  # narrow no-break space: the French thousands separator


@pytest.mark.parametrize(
    ("base", "rate", "expected"),
    [
        # base x rate / 10**6 lands exactly on half a centime: half-up goes up.
        (50, 10_000, 1),  # 1 % of 0.50 MAD = 0.5 c
        (150, 10_000, 2),  # 1.5 c
        (250, 10_000, 3),  # 2.5 c: banker's rounding would give 2
        (1_250, 5_200, 7),  # 0.52 % (short-term employee) of 12.50 MAD = 6.5 c: banker's gives 6
        (6_250, 5_200, 33),  # 32.5 c: banker's gives 32
        (78_125, 64_000, 5_000),  # 6.40 % of 781.25 MAD = 50.00 MAD exactly
        (3_125, 16_000, 50),  # 1.60 % of 31.25 MAD = 0.50 MAD exactly (no rounding)
        (2_500, 22_600, 57),  # 2.26 % (AMO) of 25 MAD = 56.5 c: banker's gives 56
        (3_125, 18_500, 58),  # 1.85 % of 31.25 MAD = 57.8125 c -> 58
        # Just below and just above the half.
        (49, 10_000, 0),
        (51, 10_000, 1),
        (0, 79_300, 0),
        # Values at and above the ceiling.
        (600_000, 5_200, 3_120),  # 31.20 MAD (cnss_rules.md check value)
        (600_000, 39_600, 23_760),  # 237.60 MAD
    ],
)
def test_apply_rate_half_up(base, rate, expected):
    assert apply_rate(np.array([base]), rate).tolist() == [expected]


def test_apply_rate_is_vectorised_and_int64():
    out = apply_rate(np.array([50, 150, 250, 350]), 10_000)
    assert out.dtype == np.int64
    assert out.tolist() == [1, 2, 3, 4]
    assert apply_rate([250], 10_000).tolist() == [3]  # lists accepted


@pytest.mark.parametrize(
    ("base", "rate"),
    [
        (9_999_999_999_999, 79_300),  # the largest 13-digit salary at 7.93 %
        (9_999_999_999_999, 210_900),  # every employer rate together (21.09 %)
        (123_456_789_012_345 // 100, 64_000),
        (2**53 + 1, 1),  # above float precision
    ],
)
def test_apply_rate_big_values_exact(base, rate):
    expected = int((Decimal(base) * rate / 10**6).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert int(apply_rate(np.array([base]), rate)[0]) == expected


@settings(max_examples=200, deadline=None)
@given(base=st.integers(0, 10**13 - 1), rate=st.integers(0, 250_000))
# Random draws almost never land on an exact half centime (about one in a million), nor on the
# extremes: these always run. Bases are never negative (the format carries no sign).
@example(base=1, rate=500_000)  # 0.5 c -> 1
@example(base=5, rate=500_000)  # 2.5 c -> 3 (banker's rounding gives 2)
@example(base=7, rate=500_000)  # 3.5 c -> 4
@example(base=2_500, rate=22_600)  # AMO on 25 MAD: 56.5 c -> 57
@example(base=10**13 - 2, rate=250_000)  # the largest exact half: 2,499,999,999,999.5 c
@example(base=10**13 - 1, rate=250_000)  # the largest product: .75 -> up
@example(base=10**13 - 1, rate=249_999)
@example(base=0, rate=250_000)
def test_apply_rate_matches_decimal_half_up(base, rate):
    # Every rate in force is below 25 %; a 13-digit salary times it stays far below 2**63.
    expected = (Decimal(base) * Decimal(rate) / Decimal(10**6)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    assert int(apply_rate(np.array([base]), rate)[0]) == int(expected)


@pytest.mark.parametrize(
    ("centimes", "text"),
    [
        (0, "0,00 MAD"),
        (5, "0,05 MAD"),
        (100, "1,00 MAD"),
        (99_999, "999,99 MAD"),
        (100_000, f"1{NNBSP}000,00 MAD"),
        (123_456_789, f"1{NNBSP}234{NNBSP}567,89 MAD"),
        (26_880, "268,80 MAD"),
        (10**17 + 1, f"1{NNBSP}000{NNBSP}000{NNBSP}000{NNBSP}000{NNBSP}000,01 MAD"),
        (np.int64(53_880), "538,80 MAD"),
        (-5, "-0,05 MAD"),
        (-123_456, f"-1{NNBSP}234,56 MAD"),
    ],
)
def test_format_mad(centimes, text):
    assert format_mad(centimes) == text


@pytest.mark.parametrize(
    "rows",
    [
        [[1, 2, 3], [4, 5, 6]],
        [[10**13 - 1] * 3, [0, 0, 0]],
        [[2**62, 2**62, 2**62], [1, 2, 3]],  # past 2**63: summed as Python integers
    ],
)
def test_exact_row_sums(rows):
    assert exact_row_sums(np.array(rows, dtype=np.int64)) == [sum(row) for row in rows]
    assert exact_row_sums(np.empty((2, 0), dtype=np.int64)) == [0, 0]


@pytest.mark.parametrize(
    ("amount", "part", "whole", "expected"),
    [
        (600_000, 200_000, 1_200_000, 100_000),  # a sixth of the payment goes to AMO
        (1, 1, 2, 1),  # half a centime rounds up
        (1, 1, 3, 0),  # a third does not
        (2, 1, 3, 1),  # two thirds do
        (5, 0, 7, 0),  # nothing owed on that side
        (5, 3, 0, 0),  # nothing owed at all: nothing to split
        (10**13 + 1, 10**13 - 1, 10**13, 10**13),  # 10**13 - 1e-13; past 2**62: Python integers
    ],
)
def test_prorate_splits_half_up_and_exactly(amount, part, whole, expected) -> None:
    got = prorate(np.array([amount]), np.array([part]), np.array([whole]))
    assert got.tolist() == [expected]
    if whole:
        assert expected == int(Fraction(amount * part, whole) + Fraction(1, 2))
