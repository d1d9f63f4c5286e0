"""Control totals: A03 over A02, B03 over B02, B05 over the entrants, B06 = B03 + B05.

Sums are exact integers (a 19-digit total can exceed what float or a wrapped int64 holds) and
a sum that needs more digits than its field is reported, never truncated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas import field
from transforms.parse import ParsedFile
from validators.anomaly import found

COUNT = "count"
# total record -> (detail record, {total field: detail field or COUNT})
SUMS = {
    "A03": (
        "A02",
        {
            "N_Nbr_Salaries": COUNT,
            "N_T_Enfants": "N_Enfants",
            "N_T_AF_A_Payer": "N_AF_A_Payer",
            "N_T_AF_A_Deduire": "N_AF_A_Deduire",
            "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
            "N_T_Num_Imma": "N_Num_Assure",
        },
    ),
    "B03": (
        "B02",
        {
            "N_Nbr_Salaries": COUNT,
            "N_T_Enfants": "N_Enfants",
            "N_T_AF_A_Payer": "N_AF_A_Payer",
            "N_T_AF_A_Deduire": "N_AF_A_Deduire",
            "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
            "N_T_Num_Imma": "N_Num_Assure",
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


def exact_sum(values: pd.Series) -> int:
    """Sum of the non-null values as a Python int, exact whatever the size."""
    array = values.dropna().to_numpy(dtype=np.int64)
    if array.size == 0:
        return 0
    if int(np.abs(array).max()) * array.size < 2**63:
        return int(array.sum())
    return sum(int(v) for v in array)  # only for absurd files: exactness beats speed here


def _compare(total: pd.DataFrame, record: str, name: str, expected: int) -> pd.DataFrame:
    """Anomaly rows for one total field of the (single) total line."""
    if total.empty:
        return found("TOTAL_INCORRECT", [])
    row = total.iloc[0]
    if expected >= 10 ** field(record, name).length:
        return found(
            "TOTAL_DEPASSEMENT", [row["line"]], record=record, field=name, expected=expected
        )
    if pd.isna(row[name]) or int(row[name]) == expected:
        return found("TOTAL_INCORRECT", [])
    return found("TOTAL_INCORRECT", [row["line"]], record=record, field=name, expected=expected)


def check_block_totals(parsed: ParsedFile, record: str, detail: pd.DataFrame) -> list[pd.DataFrame]:
    """One total record against the sums over its detail lines."""
    _, fields = SUMS[record]
    total = parsed.frame(record)
    return [
        _compare(total, record, name, len(detail) if source == COUNT else exact_sum(detail[source]))
        for name, source in fields.items()
    ]


def check_grand_total(parsed: ParsedFile) -> list[pd.DataFrame]:
    """B06 = B03 + B05, field by field, on the values as declared."""
    b03, b05, b06 = parsed.frame("B03"), parsed.frame("B05"), parsed.frame("B06")
    if b03.empty or b05.empty:
        return []
    out = []
    for name in GRAND_TOTAL:
        if pd.isna(b03[name].iloc[0]) or pd.isna(b05[name].iloc[0]):
            continue
        out.append(_compare(b06, "B06", name, int(b03[name].iloc[0]) + int(b05[name].iloc[0])))
    return out
