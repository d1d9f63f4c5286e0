"""Control totals: A03 over A02, B03 over B02, B05 over the entrants, B06 = B03 + B05.

Sums are exact integers (a 19-digit total can exceed what float or a wrapped int64 holds) and
a sum that needs more digits than its field is reported, never truncated.
"""

from __future__ import annotations

import numpy as np

from schemas import field, totals
from transforms.money import exact_sum
from transforms.parse import Block, ParsedFile
from validators.anomaly import Hits, found


def _compare(total: Block, name: str, expected: int) -> list[Hits]:
    """Anomalies for one total field of the (single) total line."""
    if len(total) == 0:
        return []
    line = total.line[:1]
    if expected >= 10 ** field(total.record, name).length:
        return [
            found("TOTAL_DEPASSEMENT", line, record=total.record, field=name, expected=expected)
        ]
    if not total.valid(name)[0] or int(total.number(name)[0]) == expected:
        return []
    return [found("TOTAL_INCORRECT", line, record=total.record, field=name, expected=expected)]


def check_block_totals(
    parsed: ParsedFile, record: str, keep: np.ndarray | None = None
) -> list[Hits]:
    """One total record against the sums over its detail lines (`keep`: which ones count)."""
    out = []
    for total in totals(record):
        (detail_record,) = total.over
        detail = parsed.block(detail_record)
        kept = np.ones(len(detail), dtype=bool) if keep is None else keep
        if total.summed is None:
            expected = int(kept.sum())
        else:
            expected = exact_sum(detail.number(total.summed)[kept & detail.valid(total.summed)])
        out += _compare(parsed.block(record), total.field, expected)
    return out


def check_grand_total(parsed: ParsedFile) -> list[Hits]:
    """B06 = B03 + B05, field by field, on the values as declared."""
    out = []
    for total in totals("B06"):
        parts = [parsed.block(record) for record in total.over]
        name = total.summed or total.field
        if all(len(part) and part.valid(name)[0] for part in parts):
            expected = sum(int(part.number(name)[0]) for part in parts)
            out += _compare(parsed.block("B06"), total.field, expected)
    return out
