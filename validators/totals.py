"""Control totals: A03 over A02, B03 over B02, B05 over the entrants, B06 = B03 + B05.

Sums are exact integers (a 19-digit total can exceed what float or a wrapped int64 holds) and
a sum that needs more digits than its field is reported, never truncated.
"""

from __future__ import annotations

import numpy as np

from schemas import field
from transforms.parse import Block, ParsedFile
from validators.anomaly import Hits, found

COUNT = "count"
# The préétabli's totals (A03 over A02), which B03 repeats over B02 before adding its own.
ROSTER_SUMS = {
    "N_Nbr_Salaries": COUNT,
    "N_T_Enfants": "N_Enfants",
    "N_T_AF_A_Payer": "N_AF_A_Payer",
    "N_T_AF_A_Deduire": "N_AF_A_Deduire",
    "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
    "N_T_Num_Imma": "N_Num_Assure",
}
# total record -> (detail record, {total field: detail field or COUNT})
SUMS = {
    "A03": ("A02", ROSTER_SUMS),
    "B03": (
        "B02",
        {
            **ROSTER_SUMS,
            "N_T_AF_A_Reverser": "N_AF_A_Reverser",
            "N_T_Jours_Declares": "N_Jours_Declares",
            "N_T_Salaire_Reel": "N_Salaire_Reel",
            "N_T_Salaire_Plaf": "N_Salaire_Plaf",
            "N_T_Ctr": "S_Ctr",
        },
    ),
    "B05": (
        "B04",
        {
            "N_Nbr_Salaries": COUNT,
            "N_T_Num_Imma": "N_Num_Assure",
            "N_T_Jours_Declares": "N_Nbr_Jours",
            "N_T_Salaire_Reel": "N_Sal_Reel",
            "N_T_Salaire_Plaf": "N_Sal_Plaf",
            "N_T_Ctr": "S_Ctr",
        },
    ),
}
GRAND_TOTAL = (
    "N_Nbr_Salaries",
    "N_T_Num_Imma",
    "N_T_Jours_Declares",
    "N_T_Salaire_Reel",
    "N_T_Salaire_Plaf",
    "N_T_Ctr",
)


def exact_sum(values: np.ndarray) -> int:
    """Sum as a Python int, exact whatever the size (int64 sums wrap silently)."""
    if values.size == 0:
        return 0
    if int(np.abs(values).max()) * values.size < 2**63:
        return int(values.sum())
    return sum(int(v) for v in values)  # only for absurd files: exactness beats speed here


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
    detail_record, fields = SUMS[record]
    detail = parsed.block(detail_record)
    keep = np.ones(len(detail), dtype=bool) if keep is None else keep
    out = []
    for name, source in fields.items():
        if source == COUNT:
            expected = int(keep.sum())
        else:
            expected = exact_sum(detail.number(source)[keep & detail.valid(source)])
        out += _compare(parsed.block(record), name, expected)
    return out


def check_grand_total(parsed: ParsedFile) -> list[Hits]:
    """B06 = B03 + B05, field by field, on the values as declared."""
    b03, b05, b06 = parsed.block("B03"), parsed.block("B05"), parsed.block("B06")
    if not len(b03) or not len(b05):
        return []
    out = []
    for name in GRAND_TOTAL:
        if b03.valid(name)[0] and b05.valid(name)[0]:
            out += _compare(b06, name, int(b03.number(name)[0]) + int(b05.number(name)[0]))
    return out
