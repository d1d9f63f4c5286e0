"""cnss_edi.penalty_notice: the XML a late employer receives, checked against its XSD."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from lxml import etree

from cnss_edi.penalty_notice import NAMESPACE, InvalidNotice, Month, Notice, name_of, render
from schemas import penalty_notice_xsd_path

D = dt.date
NS = {"n": NAMESPACE}
GENERAL, AMO, UNPAID = "MAJ_GEN_LOI_02_24", "MAJ_AMO_65_00", 8_000_000
# 202509 (due 10 Oct 2025): 100,000 MAD, 20,000 of them AMO, paid on 20 November 2025.
LATE = Notice(
    affiliate=1234567,
    period="202509",
    computed_on=D(2025, 11, 12),
    deadline=D(2025, 10, 10),
    late_after=D(2025, 10, 10),
    declared_on=D(2025, 10, 8),
    employees=12,
    due=10_000_000,
    paid=0,
    months_late=2,
    majoration_general=8_000_000 * 35 // 1000,  # 3 % + 0.5 %
    majoration_amo=2_000_000 * 2 // 100,  # 1 % + 1 %
    astreinte_months=0,
    astreinte=0,
    rules=("MAJ_AMO_65_00", "MAJ_GEN_LOI_02_24"),
    months=(
        Month(1, D(2025, 10, 11), UNPAID, 2_000_000, GENERAL, 30_000, AMO, 10_000, 240_000, 20_000),
        Month(2, D(2025, 11, 11), UNPAID, 2_000_000, GENERAL, 5_000, AMO, 10_000, 40_000, 20_000),
    ),
)
MISSING = dataclasses.replace(
    LATE,
    declared_on=None,
    due=0,
    months_late=0,
    majoration_general=0,
    majoration_amo=0,
    astreinte_months=2,
    astreinte=2 * 600_00,
    rules=("AST_DECL_17_02",),
    months=(),
)


def parsed(notice: Notice) -> etree._Element:
    root = etree.fromstring(render(notice))
    assert etree.XMLSchema(etree.parse(str(penalty_notice_xsd_path()))).validate(root)
    return root


def test_a_late_payment_lists_each_month_its_rule_and_the_total() -> None:
    root = parsed(LATE)

    assert root.find("n:notice", NS).attrib == {
        "name": "PEN_1234567_202509_20251112.xml",
        "computedOn": "2025-11-12",
    }
    assert root.find("n:contributions", NS).attrib == {
        "unit": "centimes",
        "due": "10000000",
        "paid": "0",
        "unpaid": "10000000",
    }
    months = root.findall("n:majorations/n:month", NS)
    assert [(m.attrib["rateGeneral"], m.attrib["general"]) for m in months] == [
        ("30000", "240000"),
        ("5000", "40000"),
    ]
    assert root.findtext("n:total", namespaces=NS) == str(280_000 + 40_000)
    assert root.find("n:declaration", NS).attrib["status"] == "on_time"
    assert [r.attrib["confidence"] for r in root.findall("n:rules/n:rule", NS)] == ["H", "M"]
    summary = root.findtext("n:summary", namespaces=NS)
    assert "3\u202f200,00 MAD de pénalités au 12/11/2025" in summary


def test_a_missing_declaration_has_an_astreinte_and_no_contributions() -> None:
    root = parsed(MISSING)

    assert root.find("n:contributions", NS) is None  # not declared: nothing known to be due
    assert root.find("n:declaration", NS).attrib == {"status": "missing", "employees": "12"}
    assert root.find("n:astreinte", NS).attrib["amount"] == "120000"
    assert "astreinte pour déclaration absente sur 2 mois" in root.findtext(
        "n:summary", namespaces=NS
    )


def test_the_same_notice_renders_to_the_same_bytes() -> None:
    assert render(LATE) == render(dataclasses.replace(LATE))
    assert LATE.name == name_of(1234567, "202509", D(2025, 11, 12))


def test_a_notice_outside_the_contract_is_refused_without_quoting_it() -> None:
    with pytest.raises(InvalidNotice) as refused:
        render(dataclasses.replace(LATE, majoration_amo=-987_654))
    assert "987654" not in str(refused.value)
