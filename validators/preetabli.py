"""A declaration against its préétabli: the employees CNSS expected, with their AF amounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.parse import ParsedFile
from validators.anomaly import Hits, file_level, found, found_where
from validators.structure import header

AF_FIELDS = ("N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer")
ROSTER_COLUMNS = ("N_Num_Assure", "N_Enfants", *AF_FIELDS)


@dataclass(frozen=True)
class Roster:
    """What a préétabli says: who CNSS expects, with their AF amounts (A02 columns)."""

    affiliate: int | None
    period: str | None
    transfer_id: int | None
    employees: pd.DataFrame  # ROSTER_COLUMNS, int64

    @classmethod
    def from_parsed(cls, preetabli: ParsedFile) -> Roster:
        affiliate, period = header(preetabli, "preetabli")
        a00, a02 = preetabli.block("A00"), preetabli.block("A02")
        transfer = None
        if len(a00) and a00.valid("N_Identif_Transfert")[0]:
            transfer = int(a00.number("N_Identif_Transfert")[0])
        readable = a02.valid("N_Num_Assure")  # an unreadable number is nobody's
        employees = pd.DataFrame({name: a02.number(name)[readable] for name in ROSTER_COLUMNS})
        return cls(affiliate, period, transfer, employees)


def check_against_preetabli(declaration: ParsedFile, roster: Roster) -> list[Hits]:
    """Every préétabli employee declared once in B02, nobody else there, AF copied faithfully."""
    declared = header(declaration, "declaration")
    if declared != (roster.affiliate, roster.period):
        return [
            file_level(
                "PREETABLI_AUTRE",
                value=_who(*declared),
                expected=_who(roster.affiliate, roster.period),
            )
        ]
    out = []
    b00 = declaration.block("B00")
    if roster.transfer_id is not None:
        wrong = b00.valid("N_Identif_Transfert") & (
            b00.number("N_Identif_Transfert") != roster.transfer_id
        )
        out.append(
            found_where(
                "PREETABLI_TRANSFERT",
                wrong,
                b00.line,
                record="B00",
                field="N_Identif_Transfert",
                expected=roster.transfer_id,
            )
        )
    roster_numbers = roster.employees["N_Num_Assure"].to_numpy(np.int64)
    by_number = np.argsort(roster_numbers, kind="stable")
    expected = roster_numbers[by_number]
    b02, b04 = declaration.block("B02"), declaration.block("B04")
    numbers, readable = b02.number("N_Num_Assure"), b02.valid("N_Num_Assure")
    known = readable & _member(numbers, expected)
    out.append(
        found_where(
            "HORS_PREETABLI", readable & ~known, b02.line, record="B02", field="N_Num_Assure"
        )
    )
    entrant = b04.valid("N_Num_Assure") & _member(b04.number("N_Num_Assure"), expected)
    out.append(
        found_where("ENTRANT_DANS_PREETABLI", entrant, b04.line, record="B04", field="N_Num_Assure")
    )
    position = np.searchsorted(expected, numbers[known])  # first of equal numbers, if repeated
    declared = np.zeros(len(expected), dtype=bool)
    declared[position] = True
    first_of_its_number = np.concatenate(([True], expected[1:] != expected[:-1]))
    missing = expected[first_of_its_number & ~declared]
    out.append(
        found(
            "PREETABLI_NON_DECLARE",
            np.zeros(len(missing)),
            record="A02",
            value=np.array([f"{n:09d}" for n in missing]),
        )
    )
    at = by_number[position]  # préétabli row of each declared line
    line = b02.line[known]

    expected_of = {  # the préétabli's value for each declared line, read once per column
        name: roster.employees[name].to_numpy(np.int64)[at] for name in ROSTER_COLUMNS[1:]
    }
    for name in AF_FIELDS:
        # An unreadable field (read as 0) is CHAMP_NON_NUMERIQUE already, not a difference.
        wrong = b02.valid(name)[known] & (b02.number(name)[known] != expected_of[name])
        out.append(
            found_where(
                "PREETABLI_AF_DIFFERENTE",
                wrong,
                line,
                record="B02",
                field=name,
                expected=expected_of[name],
            )
        )
    over = b02.number("N_AF_A_Reverser")[known] > expected_of["N_AF_Net_A_Payer"]
    out.append(
        found_where(
            "AF_REVERSER_SUPERIEUR",
            over,
            line,
            record="B02",
            field="N_AF_A_Reverser",
            expected=expected_of["N_AF_Net_A_Payer"],
        )
    )
    children = b02.valid("N_Enfants")[known] & (
        b02.number("N_Enfants")[known] != expected_of["N_Enfants"]
    )
    out.append(
        found_where(
            "ENFANTS_DIFFERENT",
            children,
            line,
            record="B02",
            field="N_Enfants",
            expected=expected_of["N_Enfants"],
        )
    )
    return out


def _member(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Per value: is it in `sorted_values`? (binary search: no hashing, no second sort)"""
    if sorted_values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    at = np.searchsorted(sorted_values, values).clip(max=sorted_values.size - 1)
    return sorted_values[at] == values


def _who(affiliate: int | None, period: str | None) -> str:
    return f"l'affilié {affiliate or '?'} pour la période {period or '?'}"
