"""schemas: dated tables pick the rows in force (the latest valid_from not after the period),
and a table that would break integer money is refused when it loads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import schemas
from schemas import NoRuleInForce, SchemaError, ceiling_for, rates_for

RATES_HEADER = "valid_from,branch,share,base,rate_percent,source,confidence\n"
CEILINGS_HEADER = "valid_from,ceiling_centimes,source,confidence\n"


@pytest.fixture
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of schemas/ to rewrite: the cached tables are reloaded from it, then restored."""
    for path in schemas.HERE.glob("*.csv"):
        shutil.copy(path, tmp_path)
    monkeypatch.setattr(schemas, "HERE", tmp_path)
    rates_for.cache_clear()
    ceiling_for.cache_clear()
    yield tmp_path
    rates_for.cache_clear()
    ceiling_for.cache_clear()


def family_allowances(period: str) -> int:
    (rate,) = [r for r in rates_for(period) if r.branch == "family_allowances"]
    return rate.rate_millionths


def test_the_latest_rate_set_in_force_wins_whatever_the_row_order(tables: Path) -> None:
    # The newest set first in the file, a future one last: only the dates may decide.
    (tables / "rates.csv").write_text(
        RATES_HEADER
        + "2026-01-01,family_allowances,employer,gross,7.00,test,H\n"
        + "2014-12-01,family_allowances,employer,gross,6.40,test,H\n"
        + "2020-07-01,family_allowances,employer,gross,6.70,test,H\n"
        + "2030-01-01,family_allowances,employer,gross,9.00,test,H\n"
    )
    assert family_allowances("202610") == 70_000  # the latest of three in force
    assert family_allowances("202601") == 70_000  # in force from its first day
    assert family_allowances("202512") == 67_000  # not yet: the one before
    assert family_allowances("201412") == 64_000
    assert family_allowances("203001") == 90_000
    with pytest.raises(NoRuleInForce):
        rates_for("201411")


def test_the_latest_ceiling_in_force_wins_whatever_the_row_order(tables: Path) -> None:
    (tables / "ceilings.csv").write_text(
        CEILINGS_HEADER
        + "2026-01-01,700000,test,H\n"
        + "2014-12-01,600000,test,H\n"
        + "2030-01-01,900000,test,H\n"
    )
    assert ceiling_for("202610") == 700_000
    assert ceiling_for("202601") == 700_000
    assert ceiling_for("202512") == 600_000
    assert ceiling_for("203101") == 900_000
    with pytest.raises(NoRuleInForce):
        ceiling_for("201411")


def test_a_rate_too_large_for_int64_money_is_refused(tables: Path) -> None:
    # The largest salary (13 digits) times the rate in millionths must stay below 2**63.
    (tables / "rates.csv").write_text(
        RATES_HEADER + "2014-12-01,family_allowances,employer,gross,95.00,test,H\n"
    )
    with pytest.raises(SchemaError, match="int64"):
        rates_for("202610")


def test_the_tables_in_force_load() -> None:
    assert ceiling_for("202610") == 600_000
    assert {r.branch for r in rates_for("202610")} == set(schemas.BRANCHES)
