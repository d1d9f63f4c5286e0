"""Money is int64 centimes; this is the one place where a rate meets an amount and is rounded."""

from __future__ import annotations

import numpy as np

from schemas import RATE_SCALE


def apply_rate(base_centimes: np.ndarray, rate_millionths: int | np.ndarray) -> np.ndarray:
    """base × rate, rounded half-up to the centime, in exact integer arithmetic.

    Bases are non-negative (the EDI format cannot carry a sign), so half-up and half-away-
    from-zero agree. The product stays far below 2**63: a 13-digit salary times 10**6. A rate
    may also be an array that broadcasts against the bases: one per base (penalties: each
    month of delay has its own), or a column of rates against a matrix of bases
    (contributions: every branch and share in one call).
    """
    base = np.asarray(base_centimes, dtype=np.int64)
    return (base * rate_millionths + RATE_SCALE // 2) // RATE_SCALE


def prorate(amount: np.ndarray, part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """amount × part / whole, rounded half-up to the centime, exact; 0 where whole is 0.

    Splits a partial payment between groups of branches in proportion to what each owes
    (0 ≤ part ≤ whole, amounts non-negative). half-up(a·p/w) = ⌊(2·a·p + w) / (2·w)⌋. The
    product passes 2**62 only past about 20 million MAD paid on as much owed (in centimes):
    then it is computed on Python integers, slower but exact.
    """
    a, p, w = (np.asarray(x, dtype=np.int64) for x in (amount, part, whole))
    if a.size == 0:
        return a.copy()
    divisor = np.where(w == 0, 1, w)
    if int(np.abs(a).max()) * int(np.abs(p).max()) < 2**62:
        out = (2 * a * p + divisor) // (2 * divisor)
    else:
        out = np.array(
            [
                (2 * int(x) * int(y) + int(z)) // (2 * int(z))
                for x, y, z in zip(a, p, divisor, strict=True)
            ],
            dtype=np.int64,
        )
    return np.where(w == 0, 0, out)


def exact_sum(values: np.ndarray) -> int:
    """Sum as a Python int, exact whatever the size: an int64 sum wraps silently, and 999,999
    lines of a 13-digit salary add up to about 10**19, past 2**63."""
    values = np.asarray(values)
    if values.size == 0:
        return 0
    if int(np.abs(values).max()) * values.size < 2**63:
        return int(values.sum())  # the usual case: no partial sum can reach 2**63
    return sum(int(v) for v in values)  # only for extreme files: exactness beats speed here


def exact_row_sums(rows: np.ndarray) -> list[int]:
    """exact_sum of each row of a 2-D array, in one numpy call when no sum can wrap."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return [0] * rows.shape[0]
    if int(np.abs(rows).max()) * rows.shape[1] < 2**63:
        return [int(total) for total in rows.sum(axis=1)]
    return [exact_sum(row) for row in rows]


def format_mad(centimes: int) -> str:
    """'1 234 567,89 MAD': French grouping, exact (no float on the way)."""
    sign = "-" if centimes < 0 else ""  # divmod(-5, 100) is (-1, 95): split the magnitude
    dirhams, cents = divmod(abs(int(centimes)), 100)
    return sign + f"{dirhams:,}".replace(",", "\u202f") + f",{cents:02d} MAD"
