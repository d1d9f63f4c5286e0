"""Run every check on a parsed file and say whether it is accepted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas import MAX_FILE_BYTES, MAX_LINES, NoRuleInForce, ceiling_for
from transforms.parse import ParsedFile, split_lines
from validators import lines, structure, totals
from validators.anomaly import CONTEXT_CODES, DEFAULT_CAP, Findings, Hits, collect, file_level
from validators.preetabli import Roster, check_against_preetabli


@dataclass(frozen=True)
class Validation:
    """What a validation found about one file."""

    kind: str  # "declaration" or "preetabli"
    affiliate: int | None
    period: str | None
    employees: int  # B02 (or A02) lines
    entrants: int  # real B04 lines (the empty B04 is not an entrant)
    findings: Findings

    @property
    def status(self) -> str:
        return "rejected" if self.findings.rejected else "accepted"

    @property
    def rejected_for_context(self) -> bool:
        """Rejected (also) for where, when or under which name the file came."""
        return self.findings.rejected and any(
            a.blocking and a.code in CONTEXT_CODES for a in self.findings.anomalies
        )


def validate(
    parsed: ParsedFile,
    *,
    file_name: str | None = None,
    preetabli: Roster | None = None,
    depositor: structure.Depositor | None = None,
    today: dt.date | None = None,
    from_declarant: bool = False,
    usable_name: bool = True,
    cap: int = DEFAULT_CAP,
) -> Validation:
    """Every rule on one file; never raises on file content.

    Args:
        parsed: the file, from transforms.parse.parse.
        file_name: checked against the content when it follows DS_<affiliate>_<period>.txt.
        preetabli: the matching préétabli's roster, to check the roster and the AF amounts.
        depositor: the SFTP login that dropped the file, and the affiliates it may declare for.
        today: the day the file was received (never read from the clock here): a period
            after its month is refused, the month itself is a warning (not yet ended).
        from_declarant: dropped by a declarant, who may not send a préétabli.
        usable_name: False when the file's name cannot be used (see cnss_edi.dropbox).
        cap: how many anomalies to keep (all are counted).
    """
    kind = structure.file_kind(parsed)
    affiliate, period = structure.header(parsed, kind)
    hits = structure.check_lines(parsed, kind)
    hits += structure.check_numeric_fields(parsed, kind)
    hits += structure.check_identity(
        parsed, kind, file_name=file_name, depositor=depositor, today=today
    )
    hits += structure.check_dates(parsed, kind)
    hits += lines.check_characters(parsed, kind)
    if not usable_name:
        hits.append(file_level("NOM_FICHIER_INVALIDE"))
    if kind == "preetabli" and from_declarant:
        hits.append(file_level("PREETABLI_DEPOSE"))
    entrants = 0
    if kind == "preetabli":
        hits += totals.check_block_totals(parsed, "A03")
    else:
        ceiling = _ceiling(period)
        real_entrants = ~lines.empty_entrants(parsed)
        entrants = int(real_entrants.sum())
        hits += lines.check_b02(parsed, ceiling)
        hits += lines.check_b04(parsed, ceiling)
        hits += lines.check_duplicates(parsed)
        hits += totals.check_block_totals(parsed, "B03")
        hits += totals.check_block_totals(parsed, "B05", real_entrants)
        hits += totals.check_grand_total(parsed)
        if preetabli is not None:
            hits += check_against_preetabli(parsed, preetabli)
    detail = "A02" if kind == "preetabli" else "B02"
    return Validation(
        kind=kind,
        affiliate=affiliate,
        period=period,
        employees=len(parsed.block(detail)),
        entrants=entrants,
        findings=collect(hits, parsed.lines, cap=cap),
    )


def too_many_lines(raw: bytes) -> Validation | None:
    """The verdict on a file with more lines than any valid declaration, found by counting
    line ends (no per-line array is built); None when the file may be split into lines."""
    lines = max(raw.count(b"\n"), raw.count(b"\r"))  # LF, CRLF or lone CR endings
    if lines <= MAX_LINES:
        return None
    return _unread(file_level("TROP_DE_LIGNES", value=lines, expected=MAX_LINES))


def oversized(size_bytes: int) -> Validation:
    """The verdict on a file larger than schemas.MAX_FILE_BYTES, which the caller must not
    read: rejected with FICHIER_TROP_GRAND (its size and the limit; nothing of its content)."""
    return _unread(file_level("FICHIER_TROP_GRAND", value=size_bytes, expected=MAX_FILE_BYTES))


def _unread(hit: Hits) -> Validation:
    """A file judged on its size alone: no header read, nothing counted."""
    return Validation(
        kind="declaration",
        affiliate=None,
        period=None,
        employees=0,
        entrants=0,
        findings=collect([hit], split_lines(b"")),
    )


def _ceiling(period: str | None) -> int | None:
    if period is None:
        return None
    try:
        return ceiling_for(period)
    except (NoRuleInForce, ValueError):  # reported by structure.check_identity
        return None
