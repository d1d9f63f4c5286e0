"""Check keys of affiliate and insured numbers (DMC's reading of cahier §IV-4), vectorised.

Only one public source shows the algorithm and it fails on about one real insured number in
eight (edi_format.md §13), so callers report a wrong key as a warning, never a rejection.
"""

from __future__ import annotations

import numpy as np


def _digits(numbers: np.ndarray, width: int) -> np.ndarray:
    """Matrix (n, width) of the decimal digits of non-negative integers, most significant first."""
    values = np.asarray(numbers, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def _key(weighted_sum: np.ndarray) -> np.ndarray:
    return (10 - weighted_sum % 10) % 10


def affiliate_key(first_six: np.ndarray) -> np.ndarray:
    """Key digit C7 for six-digit affiliate prefixes: s = 2(C2+C4+C6) + C1+C3+C5."""
    d = _digits(first_six, 6)
    return _key(2 * (d[:, 1] + d[:, 3] + d[:, 5]) + d[:, 0] + d[:, 2] + d[:, 4])


def insured_key(first_eight: np.ndarray) -> np.ndarray:
    """Key digit C9 for eight-digit insured prefixes: s = 2(C2+C4+C6+C8) + C3+C5+C7."""
    d = _digits(first_eight, 8)
    return _key(2 * (d[:, 1] + d[:, 3] + d[:, 5] + d[:, 7]) + d[:, 2] + d[:, 4] + d[:, 6])


def affiliate_key_ok(numbers: np.ndarray) -> np.ndarray:
    numbers = np.asarray(numbers, dtype=np.int64)
    return affiliate_key(numbers // 10) == numbers % 10


def insured_key_from_digits(digits: np.ndarray) -> np.ndarray:
    """insured_key on a (n, 9) matrix of digit values, as the parser already holds them
    (cheaper than dividing a million numbers by powers of ten)."""
    d = digits.astype(np.int16)
    return _key(2 * (d[:, 1] + d[:, 3] + d[:, 5] + d[:, 7]) + d[:, 2] + d[:, 4] + d[:, 6])
