"""Data quality of a period's loaded declarations: a Great Expectations 1.x suite, run by a
checkpoint, on the lines and the per-branch contributions as the database holds them.

The rules are one table (RULES): each names its expectation, the columns it reads and what it
means, so a failure reads as « days_in_range: 1 of 250 rows ». The frames carry no name and no
CIN; GX is asked for counts only (`partial_unexpected_count` 0), so neither the summary nor
the Data Docs ever show a salary. The expected contributions are recomputed with the dated
rates of the period (schemas/rates.csv) through transforms.money's one rounding function.

GX runs in an ephemeral context (no gx/ folder, no network: analytics off, no progress bars)
reading two Parquet files written to a temporary folder; its Data Docs are static HTML written
to `docs_dir`. Importing GX takes about 2.5 s: it is imported only when a check runs.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg2 import sql

from cnss_edi.store import Store
from schemas import BRANCHES, ceiling_for, limits, rates_for, situations
from transforms.contributions import per_employee
from validators.lines import NO_NUMBER_YET, OCCASIONAL

SITE = "cnss_edi_local"
LINE_COLUMNS = {
    "declaration_id": "int64",
    "line_no": "int64",
    "insured_number": "int64",
    "days": "int64",
    "gross_salary": "int64",
    "capped_salary": "int64",
    "employer_contribution": "int64",
    "employee_contribution": "int64",
}
CONTRIBUTION_COLUMNS = dict.fromkeys(("declaration_id", "base", "employer", "employee"), "int64")
# Occasional labour and not-yet-registered entrants share a placeholder number (validators.lines).
PLACEHOLDERS = (OCCASIONAL, NO_NUMBER_YET)


class QualityFailed(Exception):
    """The checkpoint failed: the message is the readable summary (rules and counts only)."""


@dataclass(frozen=True)
class Rule:
    """One expectation: `kind` is a class of great_expectations.expectations."""

    name: str
    table: str  # "declaration_line" or "contribution"
    kind: str
    kwargs: dict[str, Any]
    meaning: str
    skip_numbers: tuple[int, ...] = ()  # lines with these insured numbers are not judged


@dataclass(frozen=True)
class Finding:
    rule: str
    table: str
    meaning: str
    unexpected: int | None  # rows that break it (None: a table-level rule, e.g. a type)
    rows: int | None


@dataclass(frozen=True)
class QualityResult:
    period: str
    success: bool
    rows: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    docs_index: Path | None = None

    def summary(self) -> str:
        """What failed, readably: rule, table, how many rows; never a value."""
        head = f"data quality {self.period}: " + ", ".join(
            f"{n:,} {t}" for t, n in self.rows.items()
        )
        if self.success:
            return f"{head}: every expectation met"
        rows = [f"{head}: {len(self.findings)} expectation(s) failed"]
        for f in self.findings:
            count = "" if f.unexpected is None else f" on {f.unexpected:,} of {f.rows:,} rows"
            rows.append(f"  {f.table}.{f.rule} failed{count}: {f.meaning}")
        return "\n".join(rows)


def rules(period: str) -> list[Rule]:
    """The suite for a period: its ceiling, and the situation codes of schemas/."""
    line, contribution = "declaration_line", "contribution"
    types = [
        Rule(f"{c}_is_{t}", table, "ExpectColumnValuesToBeOfType", {"column": c, "type_": t}, t)
        for table, columns in ((line, LINE_COLUMNS), (contribution, CONTRIBUTION_COLUMNS))
        for c, t in columns.items()
    ]
    days = limits().max_days
    return [
        *types,
        Rule(
            "days_in_range",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "days", "min_value": 0, "max_value": days},
            f"declared days between 0 and {days}",
        ),
        Rule(
            "gross_not_negative",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "gross_salary", "min_value": 0},
            "real salary ≥ 0",
        ),
        Rule(
            "capped_not_negative",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "capped_salary", "min_value": 0},
            "capped salary ≥ 0",
        ),
        Rule(
            "capped_within_real",
            line,
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {"column_A": "gross_salary", "column_B": "capped_salary", "or_equal": True},
            "capped salary ≤ real salary",
        ),
        Rule(
            "capped_within_ceiling",
            line,
            "ExpectColumnValuesToBeBetween",
            {"column": "capped_salary", "max_value": ceiling_for(period)},
            f"capped salary ≤ the period's ceiling ({ceiling_for(period)} centimes; "
            "occasional labour excepted)",
            (OCCASIONAL,),
        ),
        Rule(
            "insured_once_per_declaration",
            line,
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["declaration_id", "insured_number"]},
            "an insured number once per declaration (placeholders excepted)",
            PLACEHOLDERS,
        ),
        Rule(
            "situation_known",
            line,
            "ExpectColumnValuesToBeInSet",
            {"column": "situation", "value_set": sorted(situations())},
            "situation code from schemas/situations.csv (or blank)",
        ),
        *(
            Rule(
                f"{share}_contribution_at_rates",
                line,
                "ExpectColumnPairValuesToBeEqual",
                {"column_A": f"{share}_contribution", "column_B": f"expected_{share}"},
                f"the line's {share} contribution = its salaries at the period's rates",
            )
            for share in ("employer", "employee")
        ),
        Rule(
            "branch_known",
            contribution,
            "ExpectColumnValuesToBeInSet",
            {"column": "branch", "value_set": list(BRANCHES)},
            "a branch of schemas.BRANCHES",
        ),
        *(
            Rule(
                f"{amount}_matches_lines",
                contribution,
                "ExpectColumnPairValuesToBeEqual",
                {"column_A": amount, "column_B": f"expected_{amount}"},
                f"the branch's {amount} = the sum over its declaration's lines at the rates",
            )
            for amount in ("base", "employer", "employee")
        ),
    ]


# -- the frames ----------------------------------------------------------------------------


def read_period(store: Store, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every loaded line and contribution of a period's declarations (all versions), without
    names or CINs, read with COPY and Arrow's CSV reader: its own type inference, so that the
    type rules check what the database hands over."""
    lines = _copy(store, period, "declaration_line", [*LINE_COLUMNS, "situation"])
    contributions = _copy(store, period, "contribution", [*CONTRIBUTION_COLUMNS, "branch"])
    return lines, contributions


def _copy(store: Store, period: str, table: str, columns: list[str]) -> pd.DataFrame:
    """One table's rows for the period's declarations; the last column is text."""
    query = sql.SQL(
        "COPY (SELECT {} FROM {} x JOIN declaration d ON d.id = x.declaration_id"
        " WHERE d.period = {}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    ).format(
        sql.SQL(", ").join(sql.SQL("x.") + sql.Identifier(c) for c in columns),
        sql.Identifier(table),
        sql.Literal(period),
    )
    buffer = io.BytesIO()
    with store.transaction() as cursor:
        cursor.copy_expert(query, buffer)
    text = columns[-1]
    if buffer.getvalue().count(b"\n") <= 1:  # the header alone: no row to infer types from
        kinds = LINE_COLUMNS | CONTRIBUTION_COLUMNS
        return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, "str")) for c in columns})
    buffer.seek(0)
    options = pacsv.ConvertOptions(column_types={text: pa.string()})
    return pacsv.read_csv(buffer, convert_options=options).to_pandas()


def with_expected(
    lines: pd.DataFrame, contributions: pd.DataFrame, period: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames with what the dated rates say they should hold: `expected_employer` and
    `expected_employee` on each line; `expected_base`, `expected_employer` and
    `expected_employee` on each declaration's branch (sums over its lines)."""
    rates = rates_for(period)
    salaries = pd.DataFrame(
        {
            "gross": lines["gross_salary"].astype("int64"),
            "capped": lines["capped_salary"].astype("int64"),
        }
    )
    amounts = per_employee(salaries, rates)
    lines = lines.assign(
        expected_employer=amounts["employer"], expected_employee=amounts["employee"]
    )
    parts = []
    for branch in BRANCHES:
        mine = [r for r in rates if r.branch == branch]
        base = mine[0].base if mine else "gross"  # as transforms.contributions.summarise
        zero = pd.Series(0, index=lines.index, dtype="int64")
        parts.append(
            pd.DataFrame(
                {
                    "declaration_id": lines["declaration_id"],
                    "branch": branch,
                    "expected_base": salaries[base],
                    "expected_employer": amounts.get(f"{branch}_employer", zero),
                    "expected_employee": amounts.get(f"{branch}_employee", zero),
                }
            )
        )
    expected = pd.concat(parts).groupby(["declaration_id", "branch"], as_index=False).sum()
    contributions = contributions.merge(expected, how="left", on=["declaration_id", "branch"])
    filled = [c for c in expected.columns if c.startswith("expected_")]
    contributions[filled] = contributions[filled].fillna(0).astype("int64")
    return lines, contributions


# -- the checkpoint ------------------------------------------------------------------------


def check_period(store: Store, period: str, docs_dir: Path) -> QualityResult:
    """Read a period from the database and run the checkpoint on it (see run_checkpoint)."""
    lines, contributions = with_expected(*read_period(store, period), period)
    return run_checkpoint(lines, contributions, period, docs_dir)


def run_checkpoint(
    lines: pd.DataFrame, contributions: pd.DataFrame, period: str, docs_dir: Path
) -> QualityResult:
    """Validate both frames against `rules(period)` with one GX checkpoint, and build the
    Data Docs into `docs_dir` (its index.html)."""
    gx = _import_gx()
    from great_expectations.checkpoint import UpdateDataDocsAction

    frames = {"declaration_line": lines, "contribution": contributions}
    with tempfile.TemporaryDirectory(prefix="cnss-edi-quality-") as staging:
        for name, frame in frames.items():
            frame.to_parquet(Path(staging) / f"{name}.parquet", index=False)
        context = gx.get_context(mode="ephemeral", project_config=_config(docs_dir))
        source = context.data_sources.add_pandas_filesystem("cnss_edi", base_directory=staging)
        definitions = []
        for name in frames:
            batch = source.add_parquet_asset(name).add_batch_definition_path(
                f"{name}_{period}", path=f"{name}.parquet"
            )
            suite = context.suites.add(gx.ExpectationSuite(name=name))
            for rule in (r for r in rules(period) if r.table == name):
                suite.add_expectation(_expectation(rule))
            definitions.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=f"{name}_{period}", data=batch, suite=suite)
                )
            )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"cnss_edi_quality_{period}",
                validation_definitions=definitions,
                actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE])],
                # Counts only: GX would otherwise list offending values (salaries).
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
            )
        )
        outcome = checkpoint.run()
    findings = [
        _finding(result)
        for run in outcome.run_results.values()
        for result in run.results
        if not result.success
    ]
    return QualityResult(
        period,
        bool(outcome.success),
        {name: len(frame) for name, frame in frames.items()},
        findings,
        docs_dir / "index.html",
    )


def _import_gx() -> Any:
    """great_expectations, quiet and offline (its INFO lines flood a task log after Airflow)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # GX 1.24 imports the deprecated `sre_constants`: its warning, not ours to act on
        # (and an error where warnings are errors, as in the tests' Airflow tasks).
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations

    return great_expectations


def _config(docs_dir: Path) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={SITE: site},
    )


def _expectation(rule: Rule) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    kwargs = dict(
        rule.kwargs, meta={"rule": rule.name, "table": rule.table, "meaning": rule.meaning}
    )
    if rule.skip_numbers:
        kwargs["row_condition"] = Column("insured_number").is_not_in(list(rule.skip_numbers))
    return getattr(gxe, rule.kind)(**kwargs)


def _finding(result: Any) -> Finding:
    kind = result.expectation_config.type
    meta = result.expectation_config.meta or {}
    counts = result.result or {}
    return Finding(
        meta.get("rule", kind),
        meta.get("table", "?"),
        meta.get("meaning", kind),
        counts.get("unexpected_count"),
        counts.get("element_count"),
    )
