"""The acknowledgement XML: valid against the XSD for every status, French summaries, and a
refusal to write what the XSD rejects (without quoting the offending value)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from cnss_edi.acknowledgement import (
    AckContent,
    InvalidAcknowledgement,
    Original,
    render,
    summary_text,
)
from cnss_edi.files import write_atomically
from schemas import BRANCHES, acknowledgement_xsd_path
from transforms.contributions import BranchAmounts, ContributionSummary
from validators.anomaly import BLOCKING, WARNING, Anomaly, Findings

NS = {"a": "urn:cnss-edi:acknowledgement:1"}
WHEN = dt.datetime(2026, 11, 9, 23, 58, tzinfo=dt.UTC)
SUMMARY = ContributionSummary(
    {b: BranchAmounts(600_000, 1_000, 500) for b in BRANCHES}, 6_000, 3_000
)
DAYS = Anomaly(
    "JOURS_HORS_LIMITES",
    BLOCKING,
    3,
    "B02",
    "N_Jours_Declares",
    "27",
    "27 jours déclarés : 26 au plus par mois.",
)
KEY = Anomaly("CLE_ASSURE", WARNING, 4, "B02", "N_Num_Assure", "100062403", "Clé incorrecte")


def content(**changes: object) -> AckContent:
    base = {
        "file_id": 7,
        "file_name": "DS_1234567_202610.txt",
        "sha256": "ab" * 32,
        "size": 520,
        "received_at": WHEN,
        "kind": "declaration",
        "status": "accepted",
        "affiliate": 1234567,
        "period": "202610",
        "employees": 2,
        "entrants": 0,
        "findings": Findings((), 0, 0),
        "version": 1,
        "contributions": SUMMARY,
    }
    return AckContent(**{**base, **changes})


def parsed(xml: bytes) -> etree._Element:
    schema = etree.XMLSchema(etree.parse(str(acknowledgement_xsd_path())))
    root = etree.fromstring(xml)
    assert schema.validate(root), schema.error_log
    return root


def test_accepted_carries_amounts_per_branch_and_the_total_due():
    root = parsed(render(content(findings=Findings((KEY,), 1, 0))))
    assert root.findtext("a:status", namespaces=NS) == "accepted"
    branches = root.findall("a:amounts/a:branch", NS)
    assert [b.get("code") for b in branches] == list(BRANCHES)
    assert root.find("a:amounts/a:total", NS).attrib == {
        "employer": "6000",
        "employee": "3000",
        "due": "9000",
    }
    assert root.find("a:declaration", NS).get("affiliate") == "1234567"
    summary = root.findtext("a:summary", namespaces=NS)
    assert summary == (
        "Déclaration acceptée : 2 salarié(s), 0 entrant(s), montant dû "
        "90,00 MAD, 1 avertissement(s)."
    )


def test_rejected_lists_every_anomaly_with_its_place():
    findings = Findings((DAYS, KEY), 1_523, 1_200)
    root = parsed(
        render(content(status="rejected", findings=findings, contributions=None, version=None))
    )
    listing = root.find("a:anomalies", NS)
    assert listing.attrib == {"total": "1523", "blocking": "1200", "listed": "2"}
    first = listing.find("a:anomaly", NS)
    assert first.attrib == {
        "code": "JOURS_HORS_LIMITES",
        "severity": "bloquante",
        "line": "3",
        "record": "B02",
        "field": "N_Jours_Declares",
        "value": "27",
    }
    assert first.text == DAYS.message
    assert root.find("a:amounts", NS) is None
    assert "1200 anomalie(s) bloquante(s)" in root.findtext("a:summary", namespaces=NS)


def test_duplicate_points_at_the_original_and_counts_nothing():
    original = Original(3, "DS_1234567_202610.txt", WHEN - dt.timedelta(hours=1), "accepted")
    root = parsed(
        render(
            content(
                status="duplicate",
                employees=None,
                entrants=None,
                contributions=None,
                version=None,
                original=original,
            )
        )
    )
    assert root.find("a:duplicateOf", NS).get("id") == "3"
    assert root.find("a:declaration", NS).get("employees") is None
    assert summary_text(content(status="duplicate", original=original)).startswith(
        # 22:58 UTC is 23:58 in Casablanca (UTC+1 outside Ramadan): people read local time.
        "Fichier identique au fichier n° 3 reçu le 09/11/2026 à 23:58 (heure du Maroc)"
    )


def test_preetabli_summary_agrees_in_gender():
    text = summary_text(content(kind="preetabli", contributions=None))
    assert text.startswith("Préétabli accepté :")


def test_what_the_xsd_rejects_is_never_written_and_not_quoted():
    secret = "SALAIRE 987654"
    bad = content(period=secret)  # not six digits: the XSD refuses it
    with pytest.raises(InvalidAcknowledgement) as raised:
        render(bad)
    assert secret not in str(raised.value)


def test_write_atomically_replaces_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "out" / "ack.xml"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["ack.xml"]
