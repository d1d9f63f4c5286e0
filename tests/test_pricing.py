"""Pricing an accepted declaration: the Arrow table to load agrees with the file and the totals."""

from __future__ import annotations

import pyarrow.compute as pc

from cnss_edi.pricing import contributions, preetabli_lines, price
from schemas import BRANCHES
from tests.edi import declaration, get_int, line_numbers, preetabli
from transforms.parse import parse


def test_lines_table_follows_the_file_b02_then_entrants():
    raw = declaration()
    table, _ = price(parse(raw), "202610")
    b02, b04 = line_numbers(raw, "B02"), line_numbers(raw, "B04")
    assert table.column("line_no").to_pylist() == b02 + b04
    assert table.column("block").to_pylist() == ["B02"] * len(b02) + ["B04"] * len(b04)
    assert table.column("gross_salary").to_pylist() == (
        [get_int(raw, n, "B02", "N_Salaire_Reel") for n in b02]
        + [get_int(raw, n, "B04", "N_Sal_Reel") for n in b04]
    )
    # AF columns belong to préétabli employees; a CIN only to entrants.
    assert table.column("af_net").null_count == len(b04)
    assert table.column("cin").null_count == len(b02)
    assert not any(name.endswith(" ") for name in table.column("full_name").to_pylist())


def test_line_contributions_add_up_to_the_summary():
    table, summary = price(parse(declaration()), "202610")
    assert pc.sum(table.column("employer_contribution")).as_py() == summary.employer
    assert pc.sum(table.column("employee_contribution")).as_py() == summary.employee
    amounts, same = contributions(parse(declaration()), "202610")
    assert same == summary
    assert set(summary.branches) == set(BRANCHES)
    assert amounts["employer"].sum() == summary.employer


def test_preetabli_lines_carry_the_roster():
    raw = preetabli()
    table = preetabli_lines(parse(raw))
    a02 = line_numbers(raw, "A02")
    assert table.column("line_no").to_pylist() == a02
    assert table.column("af_net").to_pylist() == [
        get_int(raw, n, "A02", "N_AF_Net_A_Payer") for n in a02
    ]
