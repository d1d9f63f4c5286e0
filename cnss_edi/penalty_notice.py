"""The penalty notice: an employer's late penalties for a period as of a day, as XML checked
against schemas/penalty_notice.xsd.

It carries the employer's number, the period and its deadline, the contributions due and paid,
each month of majoration with the rule and rate that priced it, the astreinte, the total, and
every dated rule applied with its sources and confidence; no name, no salary. Amounts are in
centimes. The same notice always renders to the same bytes: publishing it again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from schemas import penalty_notice_xsd_path
from schemas.penalties import Astreinte, Majoration, astreintes, majorations
from transforms.money import format_mad

NAMESPACE = "urn:cnss-edi:penalty-notice:1"
_SCHEMA_LOCK = threading.Lock()


class InvalidNotice(Exception):
    """The XML we built does not match our own XSD: a bug, never sent to an employer."""


@dataclass(frozen=True)
class Month:
    """One month of delay begun with something unpaid, and its majoration."""

    number: int
    starts_on: dt.date
    unpaid_general: int
    unpaid_amo: int
    rule_general: str
    rate_general: int  # millionths
    rule_amo: str
    rate_amo: int
    majoration_general: int
    majoration_amo: int


@dataclass(frozen=True)
class Notice:
    affiliate: int
    period: str
    computed_on: dt.date
    deadline: dt.date
    late_after: dt.date
    declared_on: dt.date | None  # None: not declared by computed_on
    employees: int
    due: int
    paid: int
    months_late: int
    majoration_general: int
    majoration_amo: int
    astreinte_months: int
    astreinte: int
    rules: tuple[str, ...]
    months: tuple[Month, ...] = ()

    @property
    def name(self) -> str:
        return name_of(self.affiliate, self.period, self.computed_on)

    @property
    def total(self) -> int:
        return self.majoration_general + self.majoration_amo + self.astreinte


def name_of(affiliate: int, period: str, computed_on: dt.date) -> str:
    return f"PEN_{affiliate:07d}_{period}_{computed_on:%Y%m%d}.xml"


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(penalty_notice_xsd_path())))


@lru_cache(maxsize=1)
def _rules() -> dict[str, Majoration | Astreinte]:
    found: dict[str, Majoration | Astreinte] = {m.rule: m for m in majorations()}
    return found | {a.rule: a for a in astreintes()}


def _el(parent: etree._Element, tag: str, **attributes: object) -> etree._Element:
    return etree.SubElement(
        parent, f"{{{NAMESPACE}}}{tag}", {k: str(v) for k, v in attributes.items() if v is not None}
    )


def status_of(notice: Notice) -> str:
    if notice.declared_on is None:
        return "missing"
    return "late" if notice.declared_on > notice.late_after else "on_time"


def summary_text(notice: Notice) -> str:
    """One French sentence: what is owed, for what, and why."""
    period = f"{notice.period[4:]}/{notice.period[:4]}"
    why = []
    if notice.majoration_general + notice.majoration_amo:
        why.append(f"majorations de retard sur {notice.months_late} mois")
    if notice.astreinte:
        late = "absente" if notice.declared_on is None else "tardive"
        why.append(f"astreinte pour déclaration {late} sur {notice.astreinte_months} mois")
    return (
        f"Période {period}, échéance du {notice.late_after:%d/%m/%Y} : "
        f"{format_mad(notice.total)} de pénalités au {notice.computed_on:%d/%m/%Y} "
        f"({' et '.join(why)})."
    )


def render(notice: Notice) -> bytes:
    """The notice as UTF-8 XML, valid against schemas/penalty_notice.xsd."""
    root = etree.Element(f"{{{NAMESPACE}}}penaltyNotice", nsmap={None: NAMESPACE})
    _el(root, "notice", name=notice.name, computedOn=notice.computed_on.isoformat())
    _el(root, "summary").text = summary_text(notice)
    _el(root, "employer", affiliate=f"{notice.affiliate:07d}")
    _el(
        root,
        "period",
        code=notice.period,
        deadline=notice.deadline.isoformat(),
        lateAfter=notice.late_after.isoformat(),
    )
    _el(
        root,
        "declaration",
        status=status_of(notice),
        declaredOn=notice.declared_on.isoformat() if notice.declared_on else None,
        employees=notice.employees,
    )
    if notice.declared_on is not None:
        _el(
            root,
            "contributions",
            unit="centimes",
            due=notice.due,
            paid=notice.paid,
            unpaid=max(notice.due - notice.paid, 0),
        )
    _majorations(root, notice)
    _el(root, "astreinte", unit="centimes", months=notice.astreinte_months, amount=notice.astreinte)
    _el(root, "total", unit="centimes").text = str(notice.total)
    listing = _el(root, "rules")
    for rule_id in notice.rules:
        rule = _rules()[rule_id]
        _el(
            listing,
            "rule",
            id=rule.rule,
            validFrom=rule.valid_from.isoformat(),
            sources=" ".join(rule.source.split(";")),
            confidence=rule.confidence,
        ).text = rule.describe()
    with _SCHEMA_LOCK:  # libxml2 schema objects are not safe to share between threads
        schema = _schema()
        valid = schema.validate(root)
    if not valid:
        error = schema.error_log.last_error
        raise InvalidNotice(f"{error.type_name} at {error.path}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _majorations(root: etree._Element, notice: Notice) -> None:
    listing = _el(
        root,
        "majorations",
        unit="centimes",
        months=notice.months_late,
        general=notice.majoration_general,
        amo=notice.majoration_amo,
        total=notice.majoration_general + notice.majoration_amo,
    )
    for month in notice.months:
        _el(
            listing,
            "month",
            number=month.number,
            startsOn=month.starts_on.isoformat(),
            unpaidGeneral=month.unpaid_general,
            unpaidAmo=month.unpaid_amo,
            ruleGeneral=month.rule_general,
            rateGeneral=month.rate_general,
            ruleAmo=month.rule_amo,
            rateAmo=month.rate_amo,
            general=month.majoration_general,
            amo=month.majoration_amo,
        )
