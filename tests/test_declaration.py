"""validators.declaration: validate() end to end on the sample and its variants."""

from __future__ import annotations

import pytest

from schemas import MAX_FILE_BYTES, MAX_LINES, RECORD_LENGTH
from tests import test_lines, test_preetabli, test_structure, test_totals
from tests.edi import (
    AFFILIATE,
    EMPLOYEES,
    ENTRANTS,
    PERIOD,
    declaration,
    delete_line,
    get_field,
    line_numbers,
    lines_of,
    preetabli,
    roster,
    run,
    sample,
    set_field,
)
from transforms.parse import parse
from validators.anomaly import RULES
from validators.declaration import oversized, too_many_lines, validate
from validators.structure import Depositor

DEC, PRE = declaration(), preetabli()


def test_every_rule_is_exercised():
    cases = test_structure.CASES + test_lines.CASES + test_totals.CASES + test_preetabli.CASES
    # Each code has at least one table row (TOTAL_DEPASSEMENT on B03 also has its own test);
    # a file too large to read is judged on its size alone (test_oversized_file_...), and the
    # drop box's rules on where a file came from have their own tests below.
    context = {"FICHIER_TROP_GRAND", "TROP_DE_LIGNES", "PREETABLI_DEPOSE", "NOM_FICHIER_INVALIDE"}
    assert set(RULES) - context == {case.code for case in cases}
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids))


def test_sample_is_accepted_without_any_anomaly():
    result = validate(parse(DEC))
    assert result.status == "accepted"
    assert result.findings.anomalies == ()
    assert (result.findings.total, result.findings.blocking_total) == (0, 0)
    assert (result.kind, result.affiliate, result.period) == ("declaration", AFFILIATE, PERIOD)
    assert (result.employees, result.entrants) == (EMPLOYEES, ENTRANTS)


def test_sample_is_accepted_against_its_preetabli_name_and_account():
    result = validate(
        parse(DEC),
        preetabli=roster(),
        file_name=f"DS_{AFFILIATE}_{PERIOD}.txt",
        depositor=Depositor("employeur-a", frozenset({AFFILIATE})),
    )
    assert result.status == "accepted"
    assert result.findings.total == 0


def test_preetabli_file_is_accepted():
    result = validate(parse(PRE), file_name=f"AFFEBDS_{AFFILIATE}_{PERIOD}.txt")
    assert (result.kind, result.status, result.findings.total) == ("preetabli", "accepted", 0)
    assert (result.employees, result.entrants) == (EMPLOYEES, 0)


def test_a_preetabli_from_a_declarant_is_refused_for_its_context():
    result = validate(parse(PRE), from_declarant=True)
    assert [a.code for a in result.findings.anomalies] == ["PREETABLI_DEPOSE"]
    assert result.rejected_for_context
    assert validate(parse(DEC), from_declarant=True).status == "accepted"


def test_an_unusable_name_is_refused_for_its_context():
    result = validate(parse(DEC), usable_name=False)
    assert [a.code for a in result.findings.anomalies] == ["NOM_FICHIER_INVALIDE"]
    assert result.rejected_for_context


def test_a_rejection_for_the_content_is_not_one_for_the_context():
    result = validate(parse(set_field(DEC, 3, "B02", "N_Jours_Declares", "27")))
    assert result.status == "rejected"
    assert not result.rejected_for_context


@pytest.mark.parametrize(("employees", "entrants"), [(1, 0), (1, 1), (3, 0), (12, 5)])
def test_counts(employees, entrants):
    _, raw = sample(employees=employees, entrants=entrants, seed=7)
    result = run(raw)
    assert result.findings.total == 0
    assert (result.employees, result.entrants) == (employees, entrants)
    assert len(line_numbers(raw, "B04")) == max(entrants, 1)  # the empty B04 when none


def test_no_entrant_with_the_empty_b04_or_without_any_b04():
    _, raw = sample(entrants=0)
    (b04,) = line_numbers(raw, "B04")
    assert get_field(raw, b04, "B04", "N_Num_Assure") == " " * 9  # the blank insured number
    for variant in (raw, delete_line(raw, b04)):
        result = run(variant)
        assert result.status == "accepted"
        assert result.findings.total == 0
        assert result.entrants == 0


@pytest.mark.parametrize(
    "variant",
    ["crlf-written", "crlf-converted", "lone-cr", "no-final-newline", "mixed-endings"],
)
def test_line_endings_are_accepted(variant):
    if variant == "crlf-written":
        raw = sample(line_ending=b"\r\n")[1]
        assert raw.count(b"\r\n") == len(lines_of(raw))
    elif variant == "crlf-converted":
        raw = DEC.replace(b"\n", b"\r\n")
    elif variant == "lone-cr":
        raw = DEC.replace(b"\n", b"\r")
    elif variant == "no-final-newline":
        raw = DEC[:-1]
    else:
        lines = lines_of(DEC)
        raw = b"".join(line + (b"\n", b"\r\n", b"\r")[i % 3] for i, line in enumerate(lines))
    result = run(raw, preetabli=roster())
    assert result.findings.total == 0
    assert result.status == "accepted"


def test_extra_blank_line_at_the_end_is_a_warning():
    # One terminator at the end is the rule; an empty line after it is tolerated with a
    # warning (edi_format.md §3); a second one is a 0-character record.
    last = len(lines_of(DEC)) + 1
    result = run(DEC + b"\n")
    assert result.status == "accepted"
    assert [(a.code, a.line) for a in result.findings.anomalies] == [("LIGNE_VIDE_FINALE", last)]
    twice = run(DEC + b"\n\n")
    assert twice.status == "rejected"
    assert ("LONGUEUR_LIGNE", last, "0") in {
        (a.code, a.line, a.value) for a in twice.findings.anomalies
    }


def test_status_follows_blocking_anomalies_only():
    warning_only = set_field(DEC, line_numbers(DEC, "B02")[0], "B02", "L_Nom_Prenom", "EL-ALAMI")
    result = run(warning_only)
    assert [a.blocking for a in result.findings.anomalies] == [False]
    assert result.status == "accepted"
    assert not result.findings.rejected
    blocking = run(set_field(DEC, 1, "B00", "L_Cat", "A0"))
    assert blocking.status == "rejected"
    assert blocking.findings.rejected


def test_cap_keeps_the_first_anomalies_but_counts_all():
    raw = DEC
    for line in line_numbers(DEC, "B02"):
        raw = set_field(raw, line, "B02", "N_Jours_Declares", 27)  # S_Ctr and totals go too
    full = validate(parse(raw))
    capped = validate(parse(raw), cap=5)
    assert full.findings.total > 5
    assert len(full.findings.anomalies) == full.findings.total
    assert len(capped.findings.anomalies) == 5
    assert capped.findings.total == full.findings.total
    assert capped.findings.blocking_total == full.findings.blocking_total
    assert capped.findings.anomalies == full.findings.anomalies[:5]
    assert capped.status == "rejected"
    lines = [a.line or 0 for a in full.findings.anomalies]
    assert lines == sorted(lines)


def test_declaration_given_as_preetabli_and_vice_versa_does_not_crash():
    # The "roster" of a declaration has no A01: no affiliate or period, so no comparison.
    wrong_roster = roster(DEC)
    result = run(DEC, preetabli=wrong_roster)
    assert result.status == "rejected"
    assert {a.code for a in result.findings.anomalies} == {"PREETABLI_AUTRE"}


def test_max_file_bytes_is_the_largest_declaration():
    # B00 B01 B03 B05 B06, 999,999 employees (B06 counts them in 6 digits), the empty B04,
    # each line 260 + CRLF, and one tolerated final empty line.
    assert MAX_FILE_BYTES == (5 + 999_999 + 1) * (RECORD_LENGTH + 2) + 2
    assert 262_000_000 < MAX_FILE_BYTES < 263_000_000


def test_oversized_file_is_rejected_unread():
    result = oversized(MAX_FILE_BYTES + 1)
    assert (result.kind, result.status, result.affiliate, result.period) == (
        "declaration",
        "rejected",
        None,
        None,
    )
    (anomaly,) = result.findings.anomalies
    assert (anomaly.code, anomaly.blocking, anomaly.line) == ("FICHIER_TROP_GRAND", True, None)
    assert anomaly.value == str(MAX_FILE_BYTES + 1)
    assert f"{MAX_FILE_BYTES + 1} octets" in anomaly.message
    assert f"({MAX_FILE_BYTES} octets)" in anomaly.message
    assert (result.findings.total, result.findings.blocking_total) == (1, 1)


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_more_lines_than_any_declaration_are_refused_before_splitting(end):
    assert too_many_lines(DEC) is None
    assert too_many_lines(end * MAX_LINES) is None
    result = too_many_lines(end * (MAX_LINES + 1))
    assert result is not None
    (anomaly,) = result.findings.anomalies
    assert (anomaly.code, anomaly.value) == ("TROP_DE_LIGNES", str(MAX_LINES + 1))


def test_max_lines_is_the_longest_declaration():
    rows = [line for line in lines_of(DEC) if line]
    employees = sum(1 for line in rows if line[:3] in (b"B02", b"B04"))
    singles = len(rows) - employees
    # The DEC sample has entrants, so no empty B04: add it, and the tolerated final empty line.
    assert singles + 999_999 + 1 + 1 == MAX_LINES
