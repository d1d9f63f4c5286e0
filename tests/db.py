"""Helpers for tests that read the database and the outbox back."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from cnss_edi.store import Store

NS = {"a": "urn:cnss-edi:acknowledgement:1"}


def query(store: Store, sql: str, *parameters: object) -> list[tuple]:
    with store.transaction() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall()


def acknowledgements(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.rglob("*.xml") if not p.name.startswith("."))


def ack_of(outbox: Path, file_id: int) -> etree._Element:
    (path,) = [p for p in acknowledgements(outbox) if p.stem.endswith(f"_AR_{file_id:08d}")]
    return etree.parse(str(path)).getroot()
