"""Fixed-width EDI records from columns: each record block is a (rows, 260 + EOL) byte matrix
filled field by field from schemas.record_layouts(), with no Python loop over rows. Used by the
sample generator and by the préétablis CNSS writes at month end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from schemas import RECORD_LENGTH, record_layouts, totals

SPACE = ord(" ")


def digits(values: Any, width: int) -> np.ndarray:
    """(n, width) ASCII matrix of non-negative integers, zero-padded; refuses to truncate."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    if values.size and (values.min() < 0 or (width < 19 and values.max() >= 10**width)):
        raise OverflowError(f"value does not fit {width} digits")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)


def text_table(words: Sequence[str], width: int) -> np.ndarray:
    """(len(words), width) matrix of left-aligned, space-padded ASCII strings."""
    if max(map(len, words)) > width:
        raise ValueError(f"text longer than {width} characters")
    matrix = np.array(words, dtype=f"S{width}").view(np.uint8).reshape(len(words), width)
    return np.where(matrix == 0, SPACE, matrix).astype(np.uint8)


def encode(record: str, rows: int, values: Mapping[str, Any], eol: bytes) -> np.ndarray:
    """(rows, 260 + len(eol)) byte matrix of one record type, laid out by schemas.

    A value is an int or int array for N fields, a str or a (n, <=width) byte matrix for AN
    fields, or None for a field left blank (the empty B04's insured number, §5).
    """
    out = np.full((rows, RECORD_LENGTH + len(eol)), SPACE, dtype=np.uint8)
    out[:, RECORD_LENGTH:] = np.frombuffer(eol, dtype=np.uint8)
    for f in record_layouts()[record]:
        if f.name == "L_filler":
            continue
        value = record if f.name == "L_Type_Enreg" else values[f.name]  # KeyError: a gap
        if value is None:
            continue
        if f.numeric:
            block = digits(value, f.length)
        elif isinstance(value, str):
            block = text_table([value], f.length)
        else:
            block = value
        out[:, f.start : f.start + block.shape[1]] = block
    return out


def totals_of(record: str, lines: Mapping[str, Any], count: int) -> dict[str, int]:
    """The total fields of `record` (schemas.totals) over `count` lines (0: the empty B04)."""
    out = {}
    for total in totals(record):
        if total.summed is None:
            out[total.field] = count
        else:
            out[total.field] = int(np.sum(lines[total.summed])) if count else 0
    return out
