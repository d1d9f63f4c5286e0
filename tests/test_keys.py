"""transforms.keys: the DMC check-key formulas against the real numbers of edi_format.md §13."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.keys import (
    affiliate_key,
    affiliate_key_ok,
    insured_key,
    insured_key_from_digits,
)

# SAMPLE insured numbers that fail the formula, each with stored digit = 9 - computed key.
FAILING_INSURED = [
    100062403,
    102929908,
    118024009,
    121549602,
    132735509,
    132766302,
    141307503,
    144979701,
]


def insured_ok(numbers: np.ndarray | list[int]) -> np.ndarray:
    """Does each insured number end with its check key?"""
    numbers = np.asarray(numbers, dtype=np.int64)
    return insured_key(numbers // 10) == numbers % 10


def test_real_affiliates_pass():
    assert affiliate_key_ok(np.array([8500218, 2703892])).tolist() == [True, True]


@pytest.mark.parametrize("number", FAILING_INSURED)
def test_real_insured_numbers_that_fail_store_nine_minus_key(number):
    assert not insured_ok(np.array([number]))[0]
    assert number % 10 == 9 - insured_key(np.array([number // 10]))[0]


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        # s = 2(C2+C4+C6) + C1+C3+C5, key = (10 - s mod 10) mod 10, worked by hand:
        (850021, 8),  # 2(5+0+1) + 8+0+2 = 22 -> 8   (SAMPLE, 8500218)
        (270389, 2),  # 2(7+3+9) + 2+0+8 = 48 -> 2   (IGASER, 2703892)
        (123456, 7),  # 2(2+4+6) + 1+3+5 = 33 -> 7
        (0, 0),  # s = 0 -> key 0, not 10
        (100000, 9),  # s = 1
        (90000, 2),  # 090000: C2 = 9 doubled counts 18 (Luhn would count 1+8 = 9, key 1)
        (505050, 5),  # only the odd positions: 5+5+5 = 15 -> 5
        (999999, 9),  # 2(27) + 27 = 81 -> 9
    ],
)
def test_affiliate_key_by_hand(prefix, key):
    assert affiliate_key(np.array([prefix]))[0] == key
    assert affiliate_key_ok(np.array([prefix * 10 + key]))[0]
    assert not affiliate_key_ok(np.array([prefix * 10 + (key + 1) % 10]))[0]


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        # s = 2(C2+C4+C6+C8) + C3+C5+C7 (C1 unused):
        (10006240, 6),  # 2(0+0+2+0) + 0+6+4 = 14 -> 6 (stored 3 = 9 - 6, see above)
        (10000000, 0),  # s = 0: 100000000 has a valid key (the portal refuses it anyway)
        (12345678, 5),  # 2(2+4+6+8) + 3+5+7 = 55 -> 5
        (13273550, 0),  # 2(3+7+5+0) + 2+3+5 = 40 -> 0 (stored 132735509: 9 = 9 - 0)
    ],
)
def test_insured_key_by_hand(prefix, key):
    assert insured_key(np.array([prefix]))[0] == key
    assert insured_ok(np.array([prefix * 10 + key]))[0]


def test_insured_key_doubles_without_digit_sum():
    # 10909090: C2=0 C3=9 C4=0 C5=9 C6=0 C7=9 C8=0 -> s = 27 -> 3
    assert insured_key(np.array([10909090]))[0] == 3
    # 19090909: C2=9 C4=9 C6=9 C8=9 doubled -> 72 -> key 8 (Luhn would reduce 18 to 9: s = 36)
    assert insured_key(np.array([19090909]))[0] == 8


def test_insured_key_ignores_the_first_digit():
    tails = np.arange(0, 10_000_000, 7919)
    keys = {d: insured_key(d * 10_000_000 + tails) for d in range(1, 10)}
    for d in range(2, 10):
        assert (keys[d] == keys[1]).all()


def test_exactly_one_key_per_prefix():
    prefixes = np.arange(100_000, 110_000)
    candidates = prefixes[:, None] * 10 + np.arange(10)
    ok = affiliate_key_ok(candidates.ravel()).reshape(candidates.shape)
    assert (ok.sum(axis=1) == 1).all()
    assert (np.argmax(ok, axis=1) == affiliate_key(prefixes)).all()


def test_vectorised_shapes():
    assert affiliate_key(np.array([], dtype=np.int64)).shape == (0,)
    assert insured_ok(np.array([], dtype=np.int64)).shape == (0,)
    numbers = np.array([8500218, 2703892, 8500219])
    assert affiliate_key_ok(numbers).tolist() == [True, True, False]
    assert affiliate_key_ok([8500218]).tolist() == [True]  # plain lists are accepted


def test_key_from_digit_matrix_agrees_with_the_number_form():
    # The validator reads keys straight from the (n, 9) digit matrix of the parsed field.
    numbers = np.array([100062403, 132735509, 123456785, 199999999, 100000000])
    digits = (numbers[:, None] // 10 ** np.arange(8, -1, -1)) % 10
    assert insured_key_from_digits(digits.astype(np.uint8)).tolist() == (
        insured_key(numbers // 10).tolist()
    )
    assert insured_key_from_digits(digits.astype(np.uint8)).tolist() == [6, 0, 5, 1, 0]
