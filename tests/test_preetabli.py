"""validators.preetabli: a declaration against the préétabli CNSS sent (roster and AF amounts)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edi import (
    AFFILIATE,
    PERIOD,
    Case,
    check_case,
    declaration,
    delete_line,
    everywhere,
    get_field,
    get_int,
    insert_lines,
    line_numbers,
    line_of,
    lines_of,
    preetabli,
    recompute_totals,
    roster,
    run,
    set_field,
    set_fields,
    with_key,
)
from transforms.parse import parse
from validators.preetabli import Roster

DEC, PRE = declaration(), preetabli()
B02 = line_numbers(DEC, "B02")
B04 = line_numbers(DEC, "B04")
FIRST, SECOND = B02[0], B02[1]
NEWCOMER = with_key(12_345_678, 9)


def number_of(line: int) -> int:
    return get_int(DEC, line, "B02", "N_Num_Assure")


def against(raw: bytes, pre: bytes | None = None):
    """Validate `raw` with the roster of `pre` (default: the sample's préétabli)."""
    return lambda: (raw, {"preetabli": roster(pre)})


def b02(line: int, **values: int | str) -> bytes:
    return recompute_totals(set_fields(DEC, line, "B02", values))


def extra_b02() -> bytes:
    """A copy of the first B02 for someone the préétabli does not list, before B03."""
    copy = set_field(DEC, FIRST, "B02", "N_Num_Assure", NEWCOMER)
    return recompute_totals(insert_lines(DEC, B02[-1] + 1, [lines_of(copy)[FIRST - 1]]))


def moved_to_entrants() -> bytes:
    """The second employee dropped from B02 and declared as an entrant instead."""
    raw = set_field(DEC, B04[0], "B04", "N_Num_Assure", number_of(SECOND))
    return recompute_totals(delete_line(raw, SECOND))


CASES = [
    Case(
        "other-period",
        "PREETABLI_AUTRE",
        against(DEC, everywhere(PRE, "L_Periode", 202609)),
        None,
        None,
        None,
        value=f"l'affilié {AFFILIATE} pour la période {PERIOD}",
    ),
    Case(
        "other-affiliate",
        "PREETABLI_AUTRE",
        against(DEC, everywhere(PRE, "N_Num_Affilie", 8500218)),
        None,
        None,
        None,
    ),
    Case(
        "transfer-id",
        "PREETABLI_TRANSFERT",
        against(
            set_field(
                DEC,
                1,
                "B00",
                "N_Identif_Transfert",
                get_int(PRE, 1, "A00", "N_Identif_Transfert") + 1,
            )
        ),
        1,
        "B00",
        "N_Identif_Transfert",
    ),
    Case(
        "employee-left-out",
        "PREETABLI_NON_DECLARE",
        against(recompute_totals(delete_line(DEC, SECOND))),
        None,
        "A02",
        None,
        value=f"{number_of(SECOND):09d}",
    ),
    Case(
        "unknown-employee-in-b02",
        "HORS_PREETABLI",
        against(extra_b02()),
        B02[-1] + 1,
        "B02",
        "N_Num_Assure",
        value=str(NEWCOMER),
    ),
    Case(
        "listed-employee-as-entrant",
        "ENTRANT_DANS_PREETABLI",
        against(moved_to_entrants()),
        B04[0] - 1,  # one B02 line fewer above it
        "B04",
        "N_Num_Assure",
        others=frozenset({"PREETABLI_NON_DECLARE"}),
    ),
    Case(
        "reverses-more-than-net",
        "AF_REVERSER_SUPERIEUR",
        against(
            b02(
                FIRST,
                N_AF_A_Reverser=get_int(PRE, FIRST, "A02", "N_AF_Net_A_Payer") + 1,
            )
        ),
        FIRST,
        "B02",
        "N_AF_A_Reverser",
    ),
    Case(
        "af-due-changed",
        "PREETABLI_AF_DIFFERENTE",
        against(b02(FIRST, N_AF_A_Payer=get_int(DEC, FIRST, "B02", "N_AF_A_Payer") + 100)),
        FIRST,
        "B02",
        "N_AF_A_Payer",
    ),
    Case(
        "af-deduction-changed",
        "PREETABLI_AF_DIFFERENTE",
        against(b02(SECOND, N_AF_A_Deduire=get_int(DEC, SECOND, "B02", "N_AF_A_Deduire") + 1)),
        SECOND,
        "B02",
        "N_AF_A_Deduire",
    ),
    Case(
        "af-net-changed",
        "PREETABLI_AF_DIFFERENTE",
        against(b02(SECOND, N_AF_Net_A_Payer=get_int(DEC, SECOND, "B02", "N_AF_Net_A_Payer") + 1)),
        SECOND,
        "B02",
        "N_AF_Net_A_Payer",
    ),
    Case(
        "children-changed",
        "ENFANTS_DIFFERENT",
        against(b02(FIRST, N_Enfants=get_int(DEC, FIRST, "B02", "N_Enfants") + 1)),
        FIRST,
        "B02",
        "N_Enfants",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case):
    check_case(case)


def test_sample_matches_its_preetabli():
    result = run(DEC, preetabli=roster())
    assert result.findings.total == 0
    assert result.status == "accepted"


def test_roster_reads_the_preetabli():
    r = Roster.from_parsed(parse(PRE))
    assert (r.affiliate, r.period) == (AFFILIATE, PERIOD)
    assert r.transfer_id == get_int(PRE, 1, "A00", "N_Identif_Transfert")
    a02 = line_numbers(PRE, "A02")
    numbers = [get_int(PRE, n, "A02", "N_Num_Assure") for n in a02]
    assert np.asarray(r.employees["N_Num_Assure"]).tolist() == numbers
    for name in ("N_Enfants", "N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer"):
        assert np.asarray(r.employees[name]).tolist() == [get_int(PRE, n, "A02", name) for n in a02]


def test_other_preetabli_stops_the_comparison():
    # Another period's préétabli: one anomaly, and no employee-by-employee noise.
    other = everywhere(PRE, "L_Periode", 202609)
    anomalies = run(delete_line(DEC, SECOND), preetabli=roster(other)).findings.anomalies
    assert {a.code for a in anomalies} == {"PREETABLI_AUTRE", "TOTAL_INCORRECT"}
    (autre,) = [a for a in anomalies if a.code == "PREETABLI_AUTRE"]
    assert autre.message == (
        f"Le préétabli fourni concerne l'affilié {AFFILIATE} pour la période 202609, "
        f"la déclaration l'affilié {AFFILIATE} pour la période {PERIOD}."
    )


def test_b02_order_does_not_matter():
    # XFS keeps préétabli order, DMC sorts: any order of the same B02 lines is fine.
    lines = lines_of(DEC)
    shuffled = lines[: FIRST - 1] + lines[FIRST - 1 : B02[-1]][::-1] + lines[B02[-1] :]
    raw = b"".join(line + b"\n" for line in shuffled)
    assert run(raw, preetabli=roster()).findings.total == 0


def test_missing_employee_message_names_the_number():
    result = run(recompute_totals(delete_line(DEC, SECOND)), preetabli=roster())
    (anomaly,) = result.findings.anomalies
    assert anomaly.message == (
        f"L'assuré {number_of(SECOND):09d} du préétabli n'est pas déclaré en B02."
    )
    assert anomaly.line is None


def test_leaver_reverses_exactly_the_preetabli_net():
    net = get_int(PRE, FIRST, "A02", "N_AF_Net_A_Payer")
    leaver = b02(
        FIRST,
        L_Situation="SO",
        N_Jours_Declares=0,
        N_Salaire_Reel=0,
        N_Salaire_Plaf=0,
        N_AF_A_Reverser=net,
    )
    assert run(leaver, preetabli=roster()).findings.total == 0


def test_transfer_id_of_the_preetabli_is_checked_only_when_known():
    b00 = line_of(DEC, "B00")
    wrong = set_field(DEC, b00, "B00", "N_Identif_Transfert", 1)
    assert run(wrong).findings.total == 0  # no préétabli: the field is opaque
    codes = {a.code for a in run(wrong, preetabli=roster()).findings.anomalies}
    assert codes == {"PREETABLI_TRANSFERT"}


@pytest.mark.parametrize(
    ("line", "record", "name"),
    [
        (FIRST, "B02", "N_AF_A_Payer"),
        (FIRST, "B02", "N_AF_Net_A_Payer"),
        (SECOND, "B02", "N_Enfants"),
        (1, "B00", "N_Identif_Transfert"),
    ],
)
def test_unreadable_field_is_reported_once(line, record, name):
    # A field that is not a number is CHAMP_NON_NUMERIQUE; it is not also "different from
    # the préétabli" (it would be compared as 0).
    width = len(get_field(DEC, line, record, name))
    raw = recompute_totals(set_field(DEC, line, record, name, "X" * width))
    anomalies = run(raw, preetabli=roster()).findings.anomalies
    assert [(a.code, a.line, a.field) for a in anomalies] == [("CHAMP_NON_NUMERIQUE", line, name)]


def test_unreadable_number_in_the_preetabli_is_nobody():
    # The préétabli's own line is unreadable: its employee cannot be matched (HORS_PREETABLI
    # for the declared line), but no phantom "000000000" is missing.
    a02 = line_numbers(PRE, "A02")[0]
    pre = set_field(PRE, a02, "A02", "N_Num_Assure", "X" * 9)
    anomalies = run(DEC, preetabli=roster(pre)).findings.anomalies
    assert [(a.code, a.line) for a in anomalies] == [("HORS_PREETABLI", FIRST)]
