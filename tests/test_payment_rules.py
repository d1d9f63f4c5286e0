"""validators.payments: one golden case per rule, each naming the line and field it must point
at; typed rows for a good file; only the first `cap` errors are formatted."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from validators.payments import RULES, check_payments

TODAY = dt.date(2026, 12, 2)
HEADER = "affiliate,period,amount_centimes,paid_on,reference\n"
GOOD = "1234567,202510,1250000,2025-11-07,VIR-2025-000123\n"


def check(text: str, **options: int):
    return check_payments(text.encode("utf-8"), today=TODAY, **options)


# (rule, file text, line, field): each file breaks exactly that rule, once.
CASES = [
    ("PAIEMENT_ENCODAGE", None, 1, ""),
    ("PAIEMENT_ENTETE", "affiliate;period;amount;paid_on;reference\n" + GOOD, 1, ""),
    ("PAIEMENT_CSV", HEADER + GOOD + '1234567,202510,1,2025-11-07,"VIR\n', 3, ""),
    ("PAIEMENT_COLONNES", HEADER + GOOD + "1234567,202510,1250000\n", 3, ""),
    ("PAIEMENT_AFFILIE", HEADER + "12345678,202510,1,2025-11-07,R1\n", 2, "affiliate"),
    ("PAIEMENT_AFFILIE", HEADER + "0000000,202510,1,2025-11-07,R1\n", 2, "affiliate"),
    ("PAIEMENT_PERIODE", HEADER + "1234567,202513,1,2025-11-07,R1\n", 2, "period"),
    ("PAIEMENT_PERIODE", HEADER + "1234567,2025-10,1,2025-11-07,R1\n", 2, "period"),
    ("PAIEMENT_PERIODE", HEADER + "1234567,202701,1,2025-11-07,R1\n", 2, "period"),  # future
    ("PAIEMENT_MONTANT", HEADER + "1234567,202510,12500.00,2025-11-07,R1\n", 2, "amount_centimes"),
    ("PAIEMENT_MONTANT", HEADER + "1234567,202510,0,2025-11-07,R1\n", 2, "amount_centimes"),
    ("PAIEMENT_MONTANT", HEADER + "1234567,202510,-5,2025-11-07,R1\n", 2, "amount_centimes"),
    ("PAIEMENT_DATE", HEADER + "1234567,202510,1,2025-02-30,R1\n", 2, "paid_on"),
    ("PAIEMENT_DATE", HEADER + "1234567,202510,1,07/11/2025,R1\n", 2, "paid_on"),
    ("PAIEMENT_DATE", HEADER + "1234567,202510,1,2026-12-03,R1\n", 2, "paid_on"),  # tomorrow
    ("PAIEMENT_REFERENCE", HEADER + "1234567,202510,1,2025-11-07,\n", 2, "reference"),
    ("PAIEMENT_REFERENCE", HEADER + "1234567,202510,1,2025-11-07,VIR 1\n", 2, "reference"),
    ("PAIEMENT_REFERENCE_DOUBLE", HEADER + GOOD + "\n" + GOOD, 4, "reference"),
]


@pytest.mark.parametrize(("rule", "text", "line", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_its_line_and_field(rule: str, text: str | None, line: int, field: str):
    checked = (
        check_payments(b"\xff" + HEADER.encode(), today=TODAY) if text is None else check(text)
    )
    assert [(e.rule, e.line, e.field) for e in checked.errors] == [(rule, line, field)]
    assert checked.error_count == 1
    assert checked.rows.empty  # nothing of a file with an error is kept
    assert checked.errors[0].message.startswith(RULES[rule].split("{")[0])


def test_every_rule_but_the_database_one_has_a_case():
    assert {c[0] for c in CASES} | {"PAIEMENT_REFERENCE_CONNUE"} == set(RULES)


def test_a_good_file_gives_typed_rows_with_their_line_numbers():
    text = "\ufeff" + HEADER + GOOD + "\r\n" + ' 0000042 ,202611,1,2026-12-02,"B/2026.7_x"\r\n'
    checked = check(text)
    assert checked.errors == []
    expected = pd.DataFrame(
        {
            "line": [2, 4],
            "affiliate": [1234567, 42],
            "period": ["202510", "202611"],
            "amount": [1250000, 1],
            "paid_on": [dt.date(2025, 11, 7), dt.date(2026, 12, 2)],
            "reference": ["VIR-2025-000123", "B/2026.7_x"],
        }
    ).astype({"line": "int64", "affiliate": "int64", "amount": "int64"})
    assert_frame_equal(checked.rows, expected, check_dtype=False)
    assert checked.rows["amount"].dtype == "int64"


def test_a_header_alone_is_an_empty_file_not_an_error():
    checked = check(HEADER)
    assert (checked.errors, len(checked.rows)) == ([], 0)


def test_errors_come_in_file_order_and_only_the_first_are_formatted():
    bad = "".join(f"1234567,202510,x,2025-11-07,R{n}\n" for n in range(5000))
    checked = check(HEADER + "1,2\n" + bad, cap=3)
    assert checked.error_count == 5001
    assert [(e.line, e.rule) for e in checked.errors] == [
        (2, "PAIEMENT_COLONNES"),
        (3, "PAIEMENT_MONTANT"),
        (4, "PAIEMENT_MONTANT"),
    ]


def test_no_message_quotes_an_amount():
    checked = check(HEADER + "1234567,202510,98765.43,2025-11-07,R1\n")
    assert "98765" not in str(checked.errors)
