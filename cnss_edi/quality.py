"""Data quality of a period's loaded declarations: a Great Expectations 1.x suite, run by a
checkpoint, on the lines and the per-branch contributions as the database holds them.

The rules are a table (cnss_edi.expectations). The frames carry no name and no CIN; GX is
asked for counts only (`partial_unexpected_count` 0), so neither the summary nor the Data Docs
ever show a salary.

GX runs in an ephemeral context (no gx/ folder, no network: analytics off, no progress bars)
reading two Parquet files written to a temporary folder; its Data Docs are static HTML written
to `docs_dir`. Importing GX takes about 2.6 s: it is imported only when a check runs.
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

from cnss_edi.expectations import CONTRIBUTION_COLUMNS, LINE_COLUMNS, Rule, rules, with_expected
from cnss_edi.store import Store

SITE = "cnss_edi_local"  # the Data Docs site


class QualityFailed(Exception):
    """The checkpoint failed: the message is the readable summary (rules and counts only)."""


@dataclass(frozen=True)
class Finding:
    """One failed expectation: which, where, what it means, and on how many rows."""

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
