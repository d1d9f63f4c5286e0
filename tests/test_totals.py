"""validators.totals: A03, B03, B05 and B06 against the lines, exact and never truncated."""

from __future__ import annotations

import pytest

from schemas import field, limits
from tests.edi import (
    Case,
    check_case,
    declaration,
    get_int,
    join,
    line_numbers,
    line_of,
    lines_of,
    preetabli,
    recompute_totals,
    run,
    sample,
    set_field,
    set_fields,
    with_key,
)

DEC, PRE = declaration(), preetabli()
B03, B05, B06 = (line_of(DEC, r) for r in ("B03", "B05", "B06"))
A03 = line_of(PRE, "A03")
MAX_DAYS = limits().max_days
FITS = 38_461  # 38,461 x 26 = 999,986: the most full months a 6-digit day total holds (§12)


def bump(raw: bytes, line: int, record: str, name: str, by: int = 1) -> bytes:
    return set_field(raw, line, record, name, get_int(raw, line, record, name) + by)


def make(raw: bytes):
    return lambda: (raw, {})


def full_months(count: int) -> bytes:
    """A declaration with no entrant and `count` B02 lines of 26 days (distinct numbers).

    No entrant, because the limit holds for B06 = B03 + B05 as well.
    """
    base = sample(entrants=0)[1]
    lines = lines_of(base)
    b02 = line_numbers(base, "B02")
    full = set_field(base, b02[0], "B02", "N_Jours_Declares", MAX_DAYS)
    template = bytearray(lines_of(full)[b02[0] - 1])
    number = field("B02", "N_Num_Assure")
    copies = []
    for prefix in range(19_000_000, 19_000_000 + count):  # 19000000x...: not in the sample
        template[number.start : number.stop] = str(with_key(prefix, 9)).encode()
        copies.append(bytes(template))
    return join(lines[: b02[0] - 1] + copies + lines[b02[-1] :])


@pytest.fixture(scope="module")
def at_capacity() -> bytes:
    return recompute_totals(full_months(FITS))


def one_more_line(raw: bytes) -> bytes:
    """One more B02 line (a new insured number), the totals left as they were."""
    lines = lines_of(raw)
    first = line_numbers(raw, "B02")[0]
    extra = set_field(raw, first, "B02", "N_Num_Assure", with_key(18_999_999, 9))
    return join([*lines[:first], lines_of(extra)[first - 1], *lines[first:]])


CASES = [
    Case(
        "b03-children",
        "TOTAL_INCORRECT",
        make(bump(DEC, B03, "B03", "N_T_Enfants")),  # not carried to B06: isolated
        B03,
        "B03",
        "N_T_Enfants",
    ),
    Case(
        "b03-count",
        "TOTAL_INCORRECT",
        make(bump(DEC, B03, "B03", "N_Nbr_Salaries")),  # B06 = B03 + B05 breaks too
        B03,
        "B03",
        "N_Nbr_Salaries",
    ),
    Case(
        "b03-af-reverser",
        "TOTAL_INCORRECT",
        make(bump(DEC, B03, "B03", "N_T_AF_A_Reverser", 100)),
        B03,
        "B03",
        "N_T_AF_A_Reverser",
    ),
    Case(
        "b05-control-total",
        "TOTAL_INCORRECT",
        make(bump(DEC, B05, "B05", "N_T_Ctr")),
        B05,
        "B05",
        "N_T_Ctr",
    ),
    Case(
        "b06-capped-salaries",
        "TOTAL_INCORRECT",
        make(bump(DEC, B06, "B06", "N_T_Salaire_Plaf")),
        B06,
        "B06",
        "N_T_Salaire_Plaf",
    ),
    Case(
        "b06-insured-sum",
        "TOTAL_INCORRECT",
        make(bump(DEC, B06, "B06", "N_T_Num_Imma", -1)),
        B06,
        "B06",
        "N_T_Num_Imma",
    ),
    Case(
        "a03-insured-sum",
        "TOTAL_INCORRECT",
        make(bump(PRE, A03, "A03", "N_T_Num_Imma")),
        A03,
        "A03",
        "N_T_Num_Imma",
    ),
    Case(
        "a03-af-net",
        "TOTAL_INCORRECT",
        make(bump(PRE, A03, "A03", "N_T_AF_Net_A_Payer", 10_000)),
        A03,
        "A03",
        "N_T_AF_Net_A_Payer",
    ),
    Case(
        "b06-days-overflow",
        "TOTAL_DEPASSEMENT",
        make(
            set_field(
                set_field(DEC, B03, "B03", "N_T_Jours_Declares", 999_990),
                B05,
                "B05",
                "N_T_Jours_Declares",
                20,
            )
        ),
        B06,
        "B06",
        "N_T_Jours_Declares",
        others=frozenset({"TOTAL_INCORRECT"}),  # B03 and B05 no longer match their lines
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case):
    check_case(case)


def test_b03_count_error_also_shows_on_b06():
    result = run(bump(DEC, B03, "B03", "N_Nbr_Salaries"))
    where = {(a.line, a.field) for a in result.findings.anomalies}
    assert where == {(B03, "N_Nbr_Salaries"), (B06, "N_Nbr_Salaries")}


def test_total_message_gives_declared_and_summed_values():
    declared = get_int(DEC, B03, "B03", "N_T_Enfants")
    (anomaly,) = run(bump(DEC, B03, "B03", "N_T_Enfants")).findings.anomalies
    assert anomaly.message == (
        f"Total N_T_Enfants = {declared + 1:06d}, la somme des lignes donne {declared}."
    )


def test_38461_full_months_fit(at_capacity):
    b03 = line_of(at_capacity, "B03")
    assert get_int(at_capacity, b03, "B03", "N_T_Jours_Declares") == FITS * MAX_DAYS == 999_986
    result = run(at_capacity)
    assert result.findings.total == 0
    assert result.status == "accepted"
    assert result.employees == FITS


def test_38462_full_months_overflow_the_day_total(at_capacity):
    raw = one_more_line(at_capacity)
    b03 = line_of(raw, "B03")
    result = run(raw)
    over = [a for a in result.findings.anomalies if a.code == "TOTAL_DEPASSEMENT"]
    assert [(a.line, a.record, a.field) for a in over] == [(b03, "B03", "N_T_Jours_Declares")]
    assert over[0].blocking
    assert "(1000012)" in over[0].message  # 38,462 x 26, never truncated to 6 digits
    assert result.status == "rejected"


def test_overflow_of_the_salary_total():
    # 101 lines of 99,999,999,999.99 MAD do not fit N_T_Salaire_Reel (15 digits).
    top = 10**13 - 1
    lines = lines_of(DEC)
    b02 = line_numbers(DEC, "B02")
    line = lines_of(set_fields(DEC, b02[0], "B02", {"N_Salaire_Reel": top}))[b02[0] - 1]
    raw = join(lines[: b02[0] - 1] + [line] * 101 + lines[b02[-1] :])
    over = [
        a
        for a in run(raw, cap=100_000).findings.anomalies
        if a.code == "TOTAL_DEPASSEMENT" and a.field == "N_T_Salaire_Reel"
    ]
    assert [a.record for a in over] == ["B03"]
    assert f"({101 * top})" in over[0].message


def test_no_entrant_b05_is_all_zero():
    _, raw = sample(entrants=0)
    b05 = line_of(raw, "B05")
    assert run(raw).findings.total == 0
    # The empty B04 is no entrant: counting it is an error (and B06 = B03 + B05 then too).
    anomalies = run(set_field(raw, b05, "B05", "N_Nbr_Salaries", 1)).findings.anomalies
    assert {(a.code, a.line, a.field) for a in anomalies} == {
        ("TOTAL_INCORRECT", b05, "N_Nbr_Salaries"),
        ("TOTAL_INCORRECT", line_of(raw, "B06"), "N_Nbr_Salaries"),
    }


def test_unreadable_line_value_is_left_out_of_the_sum():
    # A letter in one line's children count: reported once, as a number problem, not twice.
    b02 = line_numbers(DEC, "B02")[0]
    raw = recompute_totals(set_field(DEC, b02, "B02", "N_Enfants", "X1"))
    codes = [a.code for a in run(raw).findings.anomalies]
    assert codes == ["CHAMP_NON_NUMERIQUE"]


def test_recomputed_sample_is_unchanged():
    # The hand-written sums of tests/edi.py agree with the generator, line for line.
    assert recompute_totals(DEC) == DEC
    assert recompute_totals(PRE) == PRE


def test_control_sums_past_int64_overflow_their_total_never_wrap():
    # Two S_Ctr of 9 x 10**18 each: valid 19-digit fields, but their sum (1.8 x 10**19) is past
    # 2**63. Summed in int64 it would wrap to a negative number and read as a mere mismatch.
    big = 9 * 10**18
    first, second = line_numbers(DEC, "B02")[:2]
    raw = set_field(set_field(DEC, first, "B02", "S_Ctr", big), second, "B02", "S_Ctr", big)
    anomalies = run(raw).findings.anomalies
    over = [(a.code, a.line, a.field) for a in anomalies if a.record == "B03"]
    assert over == [("TOTAL_DEPASSEMENT", B03, "N_T_Ctr")]
    (anomaly,) = [a for a in anomalies if a.code == "TOTAL_DEPASSEMENT"]
    rest = sum(get_int(DEC, n, "B02", "S_Ctr") for n in line_numbers(DEC, "B02")[2:])
    assert f"({2 * big + rest})" in anomaly.message
