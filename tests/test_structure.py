"""validators.structure: bytes, lengths, record order, numeric fields, identity, name, account.

One parametrize row per rule (and per notable variant); each row mutates the valid sample and
says where the anomaly must point. See tests/edi.py for Case and check_case.
"""

from __future__ import annotations

import datetime as dt

import pytest

from schemas import data_fields, field
from tests.edi import (
    AFFILIATE,
    PERIOD,
    Case,
    check_case,
    declaration,
    delete_line,
    everywhere,
    get_field,
    insert_lines,
    line_numbers,
    line_of,
    lines_of,
    preetabli,
    record_of,
    replace_line,
    run,
    set_field,
    swap_lines,
)
from transforms.parse import BOM
from validators.structure import Depositor

DEC, PRE = declaration(), preetabli()
B02 = line_numbers(DEC, "B02")
B03, B04, B05, B06 = (line_of(DEC, r) for r in ("B03", "B04", "B05", "B06"))
NO_ANOMALY: frozenset[str] = frozenset()


def dec(mutate, **options):
    return lambda: (mutate(DEC), options)


def pre(mutate):
    return lambda: (mutate(PRE), {})


def edit_line(raw: bytes, number: int, edit) -> bytes:
    return replace_line(raw, number, edit(lines_of(raw)[number - 1]))


def put_byte(raw: bytes, number: int, column: int, byte: bytes) -> bytes:
    """Overwrite the byte at 1-based `column` of a line."""
    return edit_line(raw, number, lambda line: line[: column - 1] + byte + line[column:])


def short_a01(raw: bytes) -> bytes:
    """The SAMPLE's 242-character A01: the address area 102 wide instead of 120."""
    address = field("A01", "L_Adresse")
    return edit_line(raw, 2, lambda line: line[: address.start + 102] + line[address.stop :])


def foreign_line(raw: bytes, record: str) -> bytes:
    """Insert a line of another record type just before B06."""
    return insert_lines(raw, B06, [record.encode().ljust(260)])


CASES = [
    Case("empty-file", "FICHIER_VIDE", lambda: (b"", {}), None, None, None),
    Case("bom", "BOM", dec(lambda r: BOM + r), 1, None, None),
    Case(
        "line-too-long",
        "LONGUEUR_LIGNE",
        dec(lambda r: edit_line(r, B02[1], lambda line: line + b" ")),
        B02[1],
        None,
        None,
        value="261",
    ),
    Case(
        "final-empty-line",
        "LIGNE_VIDE_FINALE",
        dec(lambda r: r + b"\n"),
        len(lines_of(DEC)) + 1,
        None,
        None,
    ),
    Case(
        "line-too-short",
        "LONGUEUR_LIGNE",
        dec(lambda r: edit_line(r, B05, lambda line: line[:-1])),
        B05,
        None,
        None,
        value="259",
    ),
    Case(
        "a01-242",
        "LONGUEUR_LIGNE",
        pre(short_a01),
        2,
        None,
        None,
        value="242",
        # The dates slide 18 columns left, so their 260-column slots read spaces.
        others=frozenset({"CHAMP_NON_NUMERIQUE"}),
    ),
    Case(
        "non-ascii-in-filler",
        "CARACTERE_INTERDIT",
        dec(lambda r: put_byte(r, B02[0], 200, b"\xe9")),
        B02[0],
        None,
        None,
        value="200",
    ),
    Case(
        "control-char-in-filler",
        "CARACTERE_INTERDIT",
        dec(lambda r: put_byte(r, B03, 250, b"\x00")),
        B03,
        None,
        None,
        value="250",
    ),
    Case(
        "unknown-record",
        "TYPE_ENREGISTREMENT",
        dec(lambda r: foreign_line(r, "B07")),
        B06,
        None,
        None,
        value="B07",
    ),
    Case(
        "preetabli-record-in-declaration",
        "TYPE_ENREGISTREMENT",
        dec(lambda r: foreign_line(r, "A02")),
        B06,
        None,
        None,
        value="A02",
    ),
    Case(
        "b02-after-b03",
        "ORDRE_ENREGISTREMENTS",
        dec(lambda r: swap_lines(r, B02[-1], B03)),
        B03,  # the last B02 now sits on B03's old line, after the B03
        "B02",
        None,
        value="B02",
    ),
    Case(
        "b06-missing",
        "ENREGISTREMENT_MANQUANT",
        dec(lambda r: delete_line(r, B06)),
        None,
        "B06",
        None,
    ),
    Case(
        "b00-missing",
        "ENREGISTREMENT_MANQUANT",
        dec(lambda r: delete_line(r, 1)),
        None,
        "B00",
        None,
    ),
    Case(
        "a03-missing",
        "ENREGISTREMENT_MANQUANT",
        pre(lambda r: delete_line(r, line_of(r, "A03"))),
        None,
        "A03",
        None,
    ),
    Case(
        "b01-twice",
        "ENREGISTREMENT_REPETE",
        dec(lambda r: insert_lines(r, 3, [lines_of(r)[1]])),
        3,
        "B01",
        None,
    ),
    Case(
        "b06-twice",
        "ENREGISTREMENT_REPETE",
        dec(lambda r: insert_lines(r, B06 + 1, [lines_of(r)[B06 - 1]])),
        B06 + 1,
        "B06",
        None,
    ),
    Case(
        "date-not-digits",
        "CHAMP_NON_NUMERIQUE",
        dec(lambda r: set_field(r, 2, "B01", "D_Date_Emission", "2026AB26")),
        2,
        "B01",
        "D_Date_Emission",
        value="2026AB26",
    ),
    Case(
        "date-30-february",
        "DATE_INVALIDE",
        dec(lambda r: set_field(r, 2, "B01", "D_Date_Exig", 20260230)),
        2,
        "B01",
        "D_Date_Exig",
        value="20260230",
    ),
    Case(
        "preetabli-date-month-13",
        "DATE_INVALIDE",
        pre(lambda r: set_field(r, 2, "A01", "D_Date_Emission", 20261326)),
        2,
        "A01",
        "D_Date_Emission",
        value="20261326",
    ),
    Case(
        "transfer-id-blank",
        "CHAMP_NON_NUMERIQUE",
        dec(lambda r: set_field(r, 1, "B00", "N_Identif_Transfert", "")),
        1,
        "B00",
        "N_Identif_Transfert",
        value="",
    ),
    Case(
        "category-b00",
        "CATEGORIE",
        dec(lambda r: set_field(r, 1, "B00", "L_Cat", "A0")),
        1,
        "B00",
        "L_Cat",
        value="A0",
    ),
    Case(
        "category-a00",
        "CATEGORIE",
        pre(lambda r: set_field(r, 1, "A00", "L_Cat", "B0")),
        1,
        "A00",
        "L_Cat",
        value="B0",
    ),
    Case(
        "affiliate-on-b03",
        "AFFILIE_INCOHERENT",
        dec(lambda r: set_field(r, B03, "B03", "N_Num_Affilie", 8500218)),
        B03,
        "B03",
        "N_Num_Affilie",
        value="8500218",
    ),
    Case(
        "affiliate-on-a02",
        "AFFILIE_INCOHERENT",
        pre(lambda r: set_field(r, 4, "A02", "N_Num_Affilie", 8500218)),
        4,
        "A02",
        "N_Num_Affilie",
        value="8500218",
    ),
    Case(
        "period-on-b05",
        "PERIODE_INCOHERENTE",
        dec(lambda r: set_field(r, B05, "B05", "L_Periode", 202609)),
        B05,
        "B05",
        "L_Periode",
        value="202609",
    ),
    Case(
        "month-13",
        "PERIODE_INVALIDE",
        dec(lambda r: everywhere(r, "L_Periode", 202613)),
        2,
        "B01",
        None,
        value="202613",
    ),
    Case(
        "before-1959",
        "PERIODE_INVALIDE",
        dec(lambda r: everywhere(r, "L_Periode", 195812)),
        2,
        "B01",
        None,
        value="195812",
    ),
    Case(
        "preetabli-month-00",
        "PERIODE_INVALIDE",
        pre(lambda r: everywhere(r, "L_Periode", 202600)),
        2,
        "A01",
        None,
        value="202600",
    ),
    Case(
        "period-not-begun",
        "PERIODE_FUTURE",
        dec(lambda r: r, today=dt.date(2026, 9, 30)),
        2,
        "B01",
        None,
        value="202610",
    ),
    Case(
        "period-in-progress",
        "PERIODE_EN_COURS",
        dec(lambda r: r, today=dt.date(2026, 10, 31)),
        2,
        "B01",
        None,
        value="202610",
    ),
    Case(
        "before-the-rates-table",
        "PERIODE_HORS_BAREME",
        dec(lambda r: everywhere(r, "L_Periode", 201001)),
        2,
        "B01",
        None,
        value="201001",
    ),
    Case(
        "file-name-period",
        "NOM_FICHIER",
        dec(lambda r: r, file_name=f"DS_{AFFILIATE}_202611.txt"),
        2,
        "B01",
        None,
        value=f"{AFFILIATE}/{PERIOD}",
    ),
    Case(
        "file-name-affiliate",
        "NOM_FICHIER",
        dec(lambda r: r, file_name=f"DS_8500218_{PERIOD}.txt"),
        2,
        "B01",
        None,
        value=f"{AFFILIATE}/{PERIOD}",
    ),
    Case(
        "depositor-account",
        "COMPTE_DEPOSANT",
        dec(lambda r: r, depositor=Depositor("groupe-b", frozenset({8500218, 1234575}))),
        2,
        "B01",
        None,
        value=f"{AFFILIATE}",
    ),
    Case(
        "affiliate-key",
        "CLE_AFFILIE",
        dec(lambda r: everywhere(r, "N_Num_Affilie", AFFILIATE + 1)),
        2,
        "B01",
        None,
        value=f"{AFFILIATE + 1}",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case):
    check_case(case)


# --- details of some rules --------------------------------------------------------------------


def test_empty_file_is_rejected_with_nothing_else():
    result = run(b"")
    assert result.status == "rejected"
    assert [a.code for a in result.findings.anomalies] == ["FICHIER_VIDE"]
    assert result.employees == 0
    assert result.affiliate is None
    assert result.period is None


def test_a01_of_242_characters_names_the_problem():
    result = run(short_a01(PRE))
    (anomaly,) = [a for a in result.findings.anomalies if a.code == "LONGUEUR_LIGNE"]
    assert anomaly.message == "La ligne fait 242 caractères au lieu de 260."
    assert result.status == "rejected"


def test_order_message_names_both_records():
    result = run(swap_lines(DEC, B02[-1], B03))
    (anomaly,) = result.findings.anomalies
    assert anomaly.message == "Enregistrement B02 mal placé : il vient après B03."


def test_foreign_record_does_not_disturb_the_order_check():
    # B07 sits between B05 and B06: reported once as unknown, B06 is not "misplaced".
    result = run(foreign_line(DEC, "B07"))
    assert [a.code for a in result.findings.anomalies] == ["TYPE_ENREGISTREMENT"]


@pytest.mark.parametrize(
    "name",
    [
        f"DS_{AFFILIATE}_{PERIOD}.txt",
        f"DS_{AFFILIATE}_{PERIOD[4:]}{PERIOD[:4]}.txt",  # MMAAAA, as DMC writes it
        f"ds_{AFFILIATE}_{PERIOD}.TXT",
        "declaration-octobre.txt",  # not the pattern: nothing to compare
        f"DSC1_{AFFILIATE}_{PERIOD}.txt",
    ],
)
def test_file_names_that_agree_or_say_nothing(name):
    assert run(DEC, file_name=name).findings.total == 0


def test_an_account_declares_for_any_of_its_affiliates():
    group = Depositor("groupe-a", frozenset({8500218, AFFILIATE}))
    assert run(DEC, depositor=group).findings.total == 0


def test_wrong_affiliate_key_is_only_a_warning():
    result = run(everywhere(DEC, "N_Num_Affilie", AFFILIATE + 1))
    (anomaly,) = result.findings.anomalies
    assert anomaly.code == "CLE_AFFILIE"
    assert not anomaly.blocking
    assert "attendue : 7" in anomaly.message
    assert result.status == "accepted"


def test_kind_affiliate_and_period_come_from_the_content():
    assert (run(PRE).kind, run(PRE).affiliate, run(PRE).period) == (
        "preetabli",
        AFFILIATE,
        PERIOD,
    )
    assert (run(DEC).kind, run(DEC).affiliate, run(DEC).period) == (
        "declaration",
        AFFILIATE,
        PERIOD,
    )
    assert run(b"").kind == "declaration"
    unreadable = run(set_field(DEC, 2, "B01", "L_Periode", "20261X"))
    assert (unreadable.affiliate, unreadable.period) == (AFFILIATE, None)
    headless = run(delete_line(DEC, 2))
    assert (headless.affiliate, headless.period) == (None, None)
    assert "ENREGISTREMENT_MANQUANT" in {a.code for a in headless.findings.anomalies}


def test_every_numeric_field_is_checked():
    # A letter in every N field of one line of each record type: one CHAMP_NON_NUMERIQUE each.
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines_of(DEC), start=1):
        first_line.setdefault(record_of(line), number)
    raw, expected = DEC, set()
    for record, number in first_line.items():
        for f in data_fields(record):
            if f.numeric:
                text = get_field(raw, number, record, f.name)
                raw = set_field(raw, number, record, f.name, "X" + text[1:])
                expected.add((number, record, f.name))
    anomalies = run(raw, cap=10_000).findings.anomalies
    got = {(a.line, a.record, a.field) for a in anomalies if a.code == "CHAMP_NON_NUMERIQUE"}
    assert got == expected


@pytest.mark.parametrize(
    ("today", "codes", "status"),
    [
        (dt.date(2026, 9, 30), {"PERIODE_FUTURE"}, "rejected"),  # the period has not begun
        (dt.date(2026, 10, 1), {"PERIODE_EN_COURS"}, "accepted"),  # begun, not ended
        (dt.date(2026, 10, 31), {"PERIODE_EN_COURS"}, "accepted"),
        (dt.date(2026, 11, 1), set(), "accepted"),  # the usual case: the month is over
        (dt.date(2027, 1, 10), set(), "accepted"),
    ],
)
def test_period_against_the_day_of_receipt(today, codes, status):
    result = run(DEC, today=today)
    assert {a.code for a in result.findings.anomalies} == codes
    assert result.status == status
    for anomaly in result.findings.anomalies:
        assert anomaly.message.startswith(f"La période {PERIOD} ")
        assert f"(reçu le {today:%d/%m/%Y})" in anomaly.message


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_a_final_empty_line_is_only_a_warning(ending):
    raw = DEC.replace(b"\n", ending) + ending
    result = run(raw)
    (anomaly,) = result.findings.anomalies
    assert (anomaly.code, anomaly.line, anomaly.blocking) == ("LIGNE_VIDE_FINALE", B06 + 1, False)
    assert result.status == "accepted"
    assert result.employees == len(B02)


@pytest.mark.parametrize(
    "raw",
    [
        DEC + b"\n\n",  # two: the first is an empty record line
        insert_lines(DEC, B03, [b""]),  # in the middle
        b"\n",  # the only line of the file
    ],
    ids=["two-final", "middle", "alone"],
)
def test_other_empty_lines_stay_blocking(raw):
    result = run(raw)
    empty = [a for a in result.findings.anomalies if a.code == "LONGUEUR_LIGNE"]
    assert [a.value for a in empty] == ["0"]
    assert result.status == "rejected"
