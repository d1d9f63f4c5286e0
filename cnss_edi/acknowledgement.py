"""The acknowledgement XML: built from an outcome, checked against the XSD, written atomically."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from lxml import etree

from schemas import BRANCH_LABELS_FR, acknowledgement_xsd_path
from transforms.contributions import ContributionSummary
from transforms.money import format_mad
from validators.anomaly import Findings

NAMESPACE = "urn:cnss-edi:acknowledgement:1"
MOROCCO = ZoneInfo("Africa/Casablanca")  # times shown to people are Morocco's, zone named
_SCHEMA_LOCK = threading.Lock()


class InvalidAcknowledgement(Exception):
    """The XML we built does not match our own XSD: a bug, never sent to an employer."""


@dataclass(frozen=True)
class Original:
    """The first delivery of a file that was received again."""

    file_id: int
    name: str
    received_at: dt.datetime
    status: str


@dataclass(frozen=True)
class AckContent:
    file_id: int
    file_name: str
    sha256: str
    size: int
    received_at: dt.datetime
    kind: str
    status: str
    affiliate: int | None
    period: str | None
    employees: int | None  # None for a duplicate: nothing was counted
    entrants: int | None
    findings: Findings
    version: int | None = None
    contributions: ContributionSummary | None = None
    original: Original | None = None


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(acknowledgement_xsd_path())))


def _el(parent: etree._Element, tag: str, **attributes: object) -> etree._Element:
    return etree.SubElement(
        parent, f"{{{NAMESPACE}}}{tag}", {k: str(v) for k, v in attributes.items() if v is not None}
    )


def summary_text(ack: AckContent) -> str:
    """One French sentence saying what happened and what to do."""
    what, agreed = ("Préétabli", "") if ack.kind == "preetabli" else ("Déclaration", "e")
    if ack.status == "duplicate" and ack.original is not None:
        when = ack.original.received_at.astimezone(MOROCCO)
        return (
            f"Fichier identique au fichier n° {ack.original.file_id} reçu le "
            f"{when:%d/%m/%Y à %H:%M} (heure du Maroc) : ignoré, rien n'a changé."
        )
    if ack.status == "rejected":
        return (
            f"{what} rejeté{agreed} : {ack.findings.blocking_total} anomalie(s) bloquante(s). "
            "Corrigez-les et déposez le fichier à nouveau."
        )
    text = f"{what} accepté{agreed} : {ack.employees} salarié(s), {ack.entrants} entrant(s)"
    if ack.contributions is not None:
        text += f", montant dû {format_mad(ack.contributions.due)}"
    warnings = ack.findings.total - ack.findings.blocking_total
    return text + (f", {warnings} avertissement(s)." if warnings else ".")


def render(ack: AckContent) -> bytes:
    """The acknowledgement as UTF-8 XML, valid against schemas/acknowledgement.xsd."""
    root = etree.Element(f"{{{NAMESPACE}}}acknowledgement", nsmap={None: NAMESPACE})
    _el(
        root,
        "file",
        id=ack.file_id,
        name=ack.file_name,
        sha256=ack.sha256,
        size=ack.size,
        receivedAt=ack.received_at.isoformat(),
        kind=ack.kind,
    )
    _el(root, "status").text = ack.status
    _el(root, "summary").text = summary_text(ack)
    _el(
        root,
        "declaration",
        affiliate=None if ack.affiliate is None else f"{ack.affiliate:07d}",
        period=ack.period,
        version=ack.version,
        employees=ack.employees,
        entrants=ack.entrants,
    )
    if ack.original is not None:
        _el(
            root,
            "duplicateOf",
            id=ack.original.file_id,
            name=ack.original.name,
            receivedAt=ack.original.received_at.isoformat(),
            status=ack.original.status,
        )
    if ack.contributions is not None:
        amounts = _el(root, "amounts", unit="centimes")
        for code, branch in ack.contributions.branches.items():
            _el(
                amounts,
                "branch",
                code=code,
                label=BRANCH_LABELS_FR[code],
                base=branch.base,
                employer=branch.employer,
                employee=branch.employee,
            )
        _el(
            amounts,
            "total",
            employer=ack.contributions.employer,
            employee=ack.contributions.employee,
            due=ack.contributions.due,
        )
    listing = _el(
        root,
        "anomalies",
        total=ack.findings.total,
        blocking=ack.findings.blocking_total,
        listed=len(ack.findings.anomalies),
    )
    for a in ack.findings.anomalies:
        _el(
            listing,
            "anomaly",
            code=a.code,
            severity=a.severity,
            line=a.line,
            record=a.record,
            field=a.field,
            value=a.value,
        ).text = a.message
    with _SCHEMA_LOCK:  # libxml2 schema objects are not safe to share between threads
        schema = _schema()
        valid = schema.validate(root)
    if not valid:
        error = schema.error_log.last_error  # its message may quote a value: not repeated
        raise InvalidAcknowledgement(f"{error.type_name} at {error.path}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
