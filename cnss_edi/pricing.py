"""An accepted declaration priced: per-employee contributions, and the Arrow tables to load."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from schemas import rates_for
from transforms.contributions import (
    Columns,
    ContributionSummary,
    amount_columns,
    salary_columns,
    summary_of,
)
from transforms.parse import ParsedFile
from validators.lines import empty_entrants


def contributions(
    parsed: ParsedFile, period: str, entrants: np.ndarray | None = None
) -> tuple[Columns, ContributionSummary]:
    """Per-employee salaries and amounts (B02 lines, then real entrants; numpy columns by
    name) and the declaration's totals. `entrants` masks the real B04 lines, when the caller
    has it already."""
    b02, b04 = parsed.block("B02"), parsed.block("B04")
    rates = rates_for(period)
    if entrants is None:
        entrants = ~empty_entrants(parsed)
    salaries = salary_columns(b02, b04, entrants)
    amounts = amount_columns(salaries, rates)
    return {**salaries, **amounts}, summary_of(salaries, amounts, rates)


def price(parsed: ParsedFile, period: str) -> tuple[pa.Table, ContributionSummary]:
    """An accepted declaration's lines ready to load (with their contributions), and totals."""
    b02, b04 = parsed.block("B02"), parsed.block("B04")
    entrants = ~empty_entrants(parsed)
    amounts, summary = contributions(parsed, period, entrants)
    n04 = int(entrants.sum())

    def numbers(b02_field: str, b04_field: str | None = None) -> pa.Array:
        """B02 values then the entrants' ones (null where B04 has no such field)."""
        tail = pa.array(b04.number(b04_field)[entrants]) if b04_field else pa.nulls(n04, pa.int64())
        return pa.concat_arrays([pa.array(b02.number(b02_field)), tail])

    def texts(head: pa.Array, b04_field: str | None) -> pa.Array:
        tail = (
            b04.strings(b04_field).filter(pa.array(entrants))
            if b04_field
            else pa.array([""] * n04, pa.string())
        )
        return pa.concat_arrays([head, tail])

    lines = pa.table(
        {
            "line_no": pa.array(amounts["line"]),
            "block": pa.DictionaryArray.from_arrays(
                pa.array(np.repeat(np.array([0, 1], dtype=np.int8), [len(b02), n04])),
                ["B02", "B04"],
            ).cast(pa.string()),
            "insured_number": pa.array(amounts["insured_number"]),
            "full_name": texts(b02.strings("L_Nom_Prenom"), "L_Nom_Prenom"),
            "cin": texts(pa.nulls(len(b02), pa.string()), "L_Num_CIN"),
            "children": numbers("N_Enfants"),
            "af_to_pay": numbers("N_AF_A_Payer"),
            "af_to_deduct": numbers("N_AF_A_Deduire"),
            "af_net": numbers("N_AF_Net_A_Payer"),
            "af_to_reverse": numbers("N_AF_A_Reverser"),
            "days": numbers("N_Jours_Declares", "N_Nbr_Jours"),
            "gross_salary": pa.array(amounts["gross"]),
            "capped_salary": pa.array(amounts["capped"]),
            "situation": texts(b02.strings("L_Situation"), None),
            "control_sum": numbers("S_Ctr", "S_Ctr"),
            "employer_contribution": pa.array(amounts["employer"]),
            "employee_contribution": pa.array(amounts["employee"]),
        }
    )
    return lines, summary


def preetabli_lines(parsed: ParsedFile) -> pa.Table:
    a02 = parsed.block("A02")
    return pa.table(
        {
            "line_no": pa.array(a02.line),
            "insured_number": pa.array(a02.number("N_Num_Assure")),
            "full_name": a02.strings("L_Nom_Prenom"),
            "children": pa.array(a02.number("N_Enfants")),
            "af_to_pay": pa.array(a02.number("N_AF_A_Payer")),
            "af_to_deduct": pa.array(a02.number("N_AF_A_Deduire")),
            "af_net": pa.array(a02.number("N_AF_Net_A_Payer")),
        }
    )
