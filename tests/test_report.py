"""What the commands print: JSON shapes, and failures described without row contents."""

from __future__ import annotations

from contextlib import closing

import psycopg2
import pytest

from cnss_edi.report import describe_failure, validation_json, validation_text
from tests.edi import declaration, run, set_field


def test_database_errors_are_described_by_sqlstate_only(pg_conn_dsn):
    secret = "EL IDRISSI 1234567,89"
    with (
        closing(psycopg2.connect(pg_conn_dsn)) as connection,
        connection.cursor() as cursor,
        pytest.raises(psycopg2.Error) as raised,
    ):
        cursor.execute("SELECT %s::bigint", (secret,))
    assert secret in str(raised.value)  # what psycopg2 would have shown
    described = describe_failure(raised.value)
    assert secret not in described
    assert "22P02" in described


def test_other_failures_name_only_their_kind():
    assert describe_failure(ValueError("salaire 987654")) == (
        "internal error ValueError (set CNSS_EDI_DEBUG=1 for details)"
    )
    assert describe_failure(FileNotFoundError(2, "No such file", "/in/x.txt")) == (
        "No such file: /in/x.txt"
    )


def test_validation_json_lists_anomalies_in_file_order():
    raw = set_field(declaration(), 3, "B02", "N_Jours_Declares", 27)
    report = validation_json("DS.txt", "00" * 32, run(raw))
    assert report["status"] == "rejected"
    assert report["anomaly_count"] == len(report["anomalies"]) >= 1
    lines = [a["line"] or 0 for a in report["anomalies"]]
    assert lines == sorted(lines)
    assert {"code", "severity", "line", "record", "field", "value", "message"} <= set(
        report["anomalies"][0]
    )


def test_validation_text_names_line_field_and_rule():
    raw = set_field(declaration(), 3, "B02", "N_Jours_Declares", 27)
    text = validation_text("DS.txt", run(raw))
    assert text.startswith("DS.txt: REJECTED")
    assert "line       3  B02  N_Jours_Declares      JOURS_HORS_LIMITES" in text


def test_process_summary_shows_where_a_file_failed_but_no_value(tmp_path):
    from pathlib import Path

    from cnss_edi.dropbox import Refused
    from cnss_edi.inbox import InboxRun
    from cnss_edi.process import FileOutcome
    from cnss_edi.report import process_text
    from validators.anomaly import BLOCKING, Anomaly

    name = Anomaly(
        "CARACTERE_NON_ADMIS_ENTRANT",
        BLOCKING,
        254,
        "B04",
        "L_Nom_Prenom",
        "Mansouri Mohamed",
        "Le nom ... n'admettent que A-Z",
    )
    outcome = FileOutcome(
        6,
        "DS_ERREURS.txt",
        "declaration",
        "rejected",
        1234567,
        "202610",
        1,
        Path("ack.xml"),
        anomalies=(name,),
    )
    refused = Refused("1234567/in/lien.txt", "lien symbolique : seuls les fichiers sont pris")
    text = process_text(InboxRun([outcome], [refused], waiting=1), tmp_path, tmp_path, tmp_path)
    assert "line 254 B04.L_Nom_Prenom: CARACTERE_NON_ADMIS_ENTRANT" in text
    assert "Mansouri" not in text
    assert "rejected 1" in text
    assert "refused   1234567/in/lien.txt: lien symbolique" in text
    assert "1 upload(s) in progress" in text
