"""A declaration against its préétabli: the employees CNSS expected, with their AF amounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.parse import ParsedFile
from validators.anomaly import file_level, found
from validators.structure import header

AF_FIELDS = ("N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer")
ROSTER_COLUMNS = ("N_Num_Assure", "N_Enfants", *AF_FIELDS)


@dataclass(frozen=True)
class Roster:
    """What a préétabli says: who CNSS expects, with their AF amounts (A02 columns)."""

    affiliate: int | None
    period: str | None
    transfer_id: int | None
    employees: pd.DataFrame  # ROSTER_COLUMNS, nullable Int64

    @classmethod
    def from_parsed(cls, preetabli: ParsedFile) -> Roster:
        affiliate, period = header(preetabli, "preetabli")
        a00 = preetabli.frame("A00")
        transfer = None if a00.empty else a00["N_Identif_Transfert"].iloc[0]
        transfer = None if pd.isna(transfer) else int(transfer)
        return cls(affiliate, period, transfer, preetabli.frame("A02")[list(ROSTER_COLUMNS)])


def check_against_preetabli(declaration: ParsedFile, roster: Roster) -> list[pd.DataFrame]:
    """Every préétabli employee declared once in B02, nobody else there, AF copied faithfully."""
    declared = header(declaration, "declaration")
    expected = (roster.affiliate, roster.period)
    if declared != expected:
        return [file_level("PREETABLI_AUTRE", value=_who(*declared), expected=_who(*expected))]
    out = []
    b00 = declaration.frame("B00")
    if roster.transfer_id is not None and not b00.empty:
        wrong = b00["N_Identif_Transfert"].ne(roster.transfer_id).fillna(False)
        out.append(
            found(
                "PREETABLI_TRANSFERT",
                b00["line"][wrong],
                record="B00",
                field="N_Identif_Transfert",
                expected=roster.transfer_id,
            )
        )
    a02 = roster.employees.drop_duplicates("N_Num_Assure").set_index("N_Num_Assure")
    b02, b04 = declaration.frame("B02"), declaration.frame("B04")
    missing = a02.index[~a02.index.isin(b02["N_Num_Assure"])].dropna()
    out.append(
        found(
            "PREETABLI_NON_DECLARE",
            np.zeros(len(missing)),
            record="A02",
            value=[f"{n:09d}" for n in missing],
        ).assign(line=pd.NA)
    )
    known = b02["N_Num_Assure"].isin(a02.index)
    out.append(
        found(
            "HORS_PREETABLI",
            b02["line"][~known & b02["N_Num_Assure"].notna()],
            record="B02",
            field="N_Num_Assure",
        )
    )
    out.append(
        found(
            "ENTRANT_DANS_PREETABLI",
            b04["line"][b04["N_Num_Assure"].isin(a02.index)],
            record="B04",
            field="N_Num_Assure",
        )
    )
    matched = b02[known].join(a02, on="N_Num_Assure", suffixes=("", "_pre"))
    for name in AF_FIELDS:
        wrong = matched[name].ne(matched[f"{name}_pre"]).fillna(False)
        out.append(
            found(
                "PREETABLI_AF_DIFFERENTE",
                matched["line"][wrong],
                record="B02",
                field=name,
                expected=matched[f"{name}_pre"][wrong],
            )
        )
    over = (matched["N_AF_A_Reverser"] > matched["N_AF_Net_A_Payer_pre"]).fillna(False)
    out.append(
        found(
            "AF_REVERSER_SUPERIEUR",
            matched["line"][over],
            record="B02",
            field="N_AF_A_Reverser",
            expected=matched["N_AF_Net_A_Payer_pre"][over],
        )
    )
    children = matched["N_Enfants"].ne(matched["N_Enfants_pre"]).fillna(False)
    out.append(
        found(
            "ENFANTS_DIFFERENT",
            matched["line"][children],
            record="B02",
            field="N_Enfants",
            expected=matched["N_Enfants_pre"][children],
        )
    )
    return out


def _who(affiliate: int | None, period: str | None) -> str:
    return f"l'affilié {affiliate or '?'} pour la période {period or '?'}"
