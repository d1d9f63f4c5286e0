"""The quality rules as a table, and the contributions the dated rates expect: no GX run."""

from __future__ import annotations

import pandas as pd
import pytest

from cnss_edi.expectations import rules, with_expected

PERIOD = "202610"


def test_expected_contributions_follow_the_rates_of_the_period():
    lines = pd.DataFrame(
        {
            "declaration_id": [1, 1],
            "gross_salary": [1_000_000, 500_000],
            "capped_salary": [600_000, 500_000],
        }
    )
    contributions = pd.DataFrame(
        {"declaration_id": [1, 1], "branch": ["long_term", "amo"], "base": [0, 0]}
    )
    lines, contributions = with_expected(lines, contributions, PERIOD)
    # long term: 7.93 % + 3.96 % of the capped salaries; AMO: 2.26 % + 2.26 % of the gross
    long_term = contributions.set_index("branch").loc["long_term"]
    assert (long_term["expected_base"], long_term["expected_employer"]) == (1_100_000, 87_230)
    assert long_term["expected_employee"] == 23_760 + 19_800
    assert contributions.set_index("branch").loc["amo", "expected_base"] == 1_500_000
    assert lines["expected_employee"].tolist()[1] == 2_600 + 19_800 + 11_300


def test_every_rule_is_a_real_expectation_with_a_meaning():
    gxe = pytest.importorskip("great_expectations.expectations")

    found = rules(PERIOD)
    assert len({(r.table, r.name) for r in found}) == len(found)
    for rule in found:
        assert rule.meaning, rule.name
        assert hasattr(gxe, rule.kind), rule.name
    ceiling = next(r for r in found if r.name == "capped_within_ceiling")
    assert ceiling.kwargs["max_value"] == 600_000
