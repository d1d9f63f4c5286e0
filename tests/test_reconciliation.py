"""transforms.reconciliation on frames of a few rows: statuses, the roster comparison, the
declared totals, and the split of payments between branches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from schemas import BRANCHES
from transforms.reconciliation import Month, by_branch, reconcile, status_of, totals_differing

A, B, C, D, E = 1000001, 1000002, 1000003, 1000004, 1000005
P1, P2, P3, NEW = 110000001, 110000002, 110000003, 120000009
I64 = "int64"


def _frame(columns: tuple[str, ...], rows: list[tuple], **types: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype({c: types.get(c, I64) for c in columns})


def _declaration(affiliate: int, lines: list[tuple[int, bool, int]], *, version: int = 1):
    """A consistent current declaration: (insured_number, entrant, gross) lines whose
    contributions are 10 % employer and 5 % employee, all in family_allowances."""
    rows = [
        (affiliate, entrant, number, gross, gross, gross // 10, gross // 20)
        for number, entrant, gross in lines
    ]
    employer = sum(r[5] for r in rows)
    employee = sum(r[6] for r in rows)
    declaration = (
        affiliate,
        affiliate * 10,
        version,
        version,
        sum(not entrant for _, entrant, _ in lines),
        sum(entrant for _, entrant, _ in lines),
        sum(r[3] for r in rows),
        sum(r[4] for r in rows),
        employer,
        employee,
        employer + employee,
    )
    return declaration, rows, [(affiliate, "family_allowances", employer, employee)]


DECLARATION = (
    "affiliate", "declaration_id", "version", "versions", "employees", "entrants",
    "total_gross", "total_capped", "employer_due", "employee_due", "total_due",
)  # fmt: skip
LINE = (
    "affiliate", "entrant", "insured_number", "gross_salary", "capped_salary",
    "employer_contribution", "employee_contribution",
)  # fmt: skip


def month(
    *,
    accounts: list[int] = (),  # type: ignore[assignment]
    rosters: dict[int, list[int]] | None = None,
    declared: list[tuple] = (),  # type: ignore[assignment]
    payments: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> Month:
    rosters = rosters or {}
    declarations, lines, contributions = [], [], []
    for declaration, its_lines, its_contributions in declared:
        declarations.append(declaration)
        lines += its_lines
        contributions += its_contributions
    return Month(
        "202610",
        _frame(("affiliate",), [(a,) for a in accounts]),
        _frame(("affiliate", "employees"), [(a, len(n)) for a, n in rosters.items()]),
        _frame(("affiliate", "insured_number"), [(a, n) for a, ns in rosters.items() for n in ns]),
        _frame(DECLARATION, declarations),
        _frame(LINE, lines, entrant="bool"),
        _frame(("affiliate", "branch", "employer", "employee"), contributions, branch="str"),
        _frame(("affiliate", "amount"), list(payments)),
    )


@pytest.mark.parametrize(
    ("declared", "difference", "status"),
    [
        (True, 0, "balanced"),
        (True, -1, "underpaid"),  # a centime short
        (True, 1, "overpaid"),
        (False, 0, "not declared"),  # nothing declared, nothing paid
        (False, 500, "not declared"),  # paid on account: still not declared
    ],
)
def test_one_case_per_status(declared, difference, status):
    assert status_of(np.array([declared]), np.array([difference])).tolist() == [status]


def test_each_status_from_due_and_paid():
    staff = [(P1, False, 100_000), (P2, False, 100_000)]  # due 30,000 centimes
    result = reconcile(
        month(
            accounts=[A, B, C, D],
            declared=[_declaration(a, staff) for a in (A, B, C)],
            payments=[(A, 30_000), (B, 10_000), (B, 5_000), (C, 30_001), (D, 700)],
        )
    )
    got = result.employers[["affiliate", "status", "due", "paid", "difference", "payments"]]
    expected = pd.DataFrame(
        {
            "affiliate": [A, B, C, D],
            "status": ["balanced", "underpaid", "overpaid", "not declared"],
            "due": [30_000, 30_000, 30_000, 0],
            "paid": [30_000, 15_000, 30_001, 700],
            "difference": [0, -15_000, 1, 700],
            "payments": [1, 2, 1, 1],
        }
    ).astype(dict.fromkeys(("affiliate", "due", "paid", "difference", "payments"), I64))
    assert_frame_equal(got, expected)
    assert result.summary["balanced"] == 1
    assert result.summary["not_declared"] == 1
    assert (result.summary["due"], result.summary["paid"]) == (90_000, 75_701)
    assert (result.summary["shortfall"], result.summary["excess"]) == (15_000, 1 + 700)


def test_expected_employers_come_from_accounts_and_preetablis_and_the_others_are_listed():
    result = reconcile(
        month(
            accounts=[A],
            rosters={B: [P1]},
            declared=[_declaration(C, [(P1, False, 1_000)])],
            payments=[(D, 50)],
        )
    )
    rows = result.employers.set_index("affiliate")
    assert rows["expected"].to_dict() == {A: True, B: True, C: False, D: False}
    assert rows["status"].to_dict() == {
        A: "not declared",
        B: "not declared",
        C: "underpaid",
        D: "not declared",
    }
    summary = result.summary
    assert (summary["employers_expected"], summary["employers_declared"]) == (2, 1)
    assert (summary["employers_paid"], summary["employers_not_expected"]) == (1, 2)


def test_roster_against_declared_employees():
    declaration = _declaration(
        A,
        [(P1, False, 1_000), (P3, False, 1_000), (NEW, True, 1_000), (P1, True, 1_000)],
    )
    result = reconcile(month(rosters={A: [P1, P2]}, declared=[declaration]))
    expected = pd.DataFrame(
        {
            "affiliate": [A, A, A],
            "insured_number": [P1, P2, P3],
            "issue": ["declared_twice", "missing", "unexpected"],
        }
    ).astype({"affiliate": I64, "insured_number": I64})
    assert_frame_equal(result.employees, expected)
    row = result.employers.iloc[0]
    assert (row.missing_employees, row.unexpected_employees, row.declared_twice) == (1, 1, 1)
    assert (row.roster_employees, row.declared_employees) == (2, 4)


def test_no_roster_no_roster_issues_and_entrants_without_a_number_are_not_twice():
    declaration = _declaration(A, [(P1, False, 1_000), (0, True, 1_000), (0, True, 1_000)])
    not_declared = reconcile(month(rosters={B: [P1, P2]}, declared=[declaration]))
    assert not_declared.employees.empty  # B's roster: nothing is missing from no declaration
    assert not_declared.employers["roster_employees"].isna().tolist() == [True, False]


def test_declared_totals_against_the_lines():
    good = _declaration(A, [(P1, False, 1_000)])
    declaration, lines, contributions = _declaration(B, [(P1, False, 1_000), (P2, True, 500)])
    tampered = list(declaration)
    tampered[DECLARATION.index("total_gross")] += 1
    tampered[DECLARATION.index("entrants")] = 0
    wrong_branch = [(B, "family_allowances", contributions[0][2] - 1, contributions[0][3])]
    got = totals_differing(month(declared=[good, (tuple(tampered), lines, wrong_branch)]))
    expected = pd.DataFrame(
        {"affiliate": [A, B], "totals_differing": ["", "entrants;total_gross;branches"]}
    ).astype({"affiliate": I64})
    assert_frame_equal(got, expected)


def test_payments_split_between_branches_add_up_exactly():
    """1,001 centimes owed in three branches, 1,000 paid: prorated parts round, yet add up."""
    contributions = [
        (A, "family_allowances", 333, 0),
        (A, "short_term", 334, 0),
        (A, "amo", 167, 167),
        (B, "amo", 100, 0),
    ]
    data = month(declared=[], payments=[(A, 1_000), (B, 150), (C, 40)])
    data = Month(
        **{
            **data.__dict__,
            "contributions": _frame(
                ("affiliate", "branch", "employer", "employee"), contributions, branch="str"
            ),
        }
    )
    employers = pd.DataFrame({"affiliate": [A, B, C], "paid": [1_000, 150, 40]})

    got = by_branch(data, employers).set_index("branch")

    assert (
        got.loc["family_allowances", "received"]
        + got.loc["short_term", "received"]
        + (got.loc["amo", "received"])
        == 1_000 + 100
    )
    assert got.loc["unallocated", "received"] == 50 + 40  # B's excess, C's undeclared
    assert got["received"].sum() == 1_190
    assert got["due"].sum() == 1_101
    assert list(got.index) == [*BRANCHES, "unallocated"]
    assert (got["received"] >= 0).all()
