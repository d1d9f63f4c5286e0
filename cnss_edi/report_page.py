"""The monthly report as one HTML page that opens offline: inline CSS, charts as inline SVG
drawn by matplotlib, no script, no font, image or style fetched from anywhere.

Every value shown is escaped; the only figures are per employer (affiliate numbers, amounts
due and paid) or per branch, anomaly code and day: no name, CIN or salary of anyone.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd

from schemas import BRANCH_LABELS_FR
from transforms.campaign import UNALLOCATED
from transforms.money import format_mad

if TYPE_CHECKING:
    from cnss_edi.monthly_report import MonthFigures
    from transforms.deadlines import Deadline

SVG_METADATA = ("Creator", "Date", "Format", "Type")  # all None: no RDF block with its URLs
LISTED = 50
# The reconciliation's summary (transforms.reconciliation.summarise): key, label, money?
RECONCILED = (
    ("employers_expected", "Employeurs attendus", False),
    ("employers_declared", "Ont déclaré", False),
    ("employers_paid", "Ont payé", False),
    ("balanced", "Soldés", False),
    ("underpaid", "Sous-payés", False),
    ("overpaid", "Trop-payés", False),
    ("not_declared", "Non déclarés", False),
    ("due", "Dû", True),
    ("paid", "Encaissé", True),
    ("shortfall", "Reste dû par les sous-payés", True),
    ("excess", "Encaissé au-delà du dû", True),
    ("totals_differing", "Déclarations aux totaux différents des lignes", False),
    ("missing_employees", "Salariés du préétabli non déclarés", False),
    ("unexpected_employees", "Salariés déclarés hors préétabli", False),
    ("declared_twice", "Salariés déclarés deux fois", False),
)  # employers listed per table; the rest is counted
BLUE, ORANGE, GREY, RED = "#1f5fa8", "#e08a1e", "#8a8f98", "#b3261e"
STYLE = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d5d9e0;padding-bottom:.3rem}.sub{color:#5b6472;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #d5d9e0;border-radius:8px;
padding:.6rem 1rem;min-width:9rem}.card b{display:block;font-size:1.5rem}.card span{color:#5b6472}
.alert b{color:#b3261e}table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .8rem;
border-bottom:1px solid #e6e9ee;text-align:left}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}.cols{display:flex;flex-wrap:wrap;gap:2rem}svg{max-width:100%;
height:auto}.note{color:#5b6472;font-size:.9rem}
"""


def render(figures: MonthFigures, *, data_docs: str | None) -> str:
    """The page; `data_docs` is the Data Docs index relative to the page, None if not built."""
    employers = figures.employers
    expected = employers[employers["expected"]]
    due = figures.due
    sections = [
        f"<h1>Campagne de déclaration EDI — période {_period(figures.period)}</h1>",
        f'<p class="sub">{escape(_deadline_text(due))}</p>',
        _cards(employers, expected),
        "<h2>Déclarations reçues, jour par jour</h2>",
        _campaign_svg(figures.curve, due.ordinary, due.deadline, len(expected)),
        "<h2>Montants dus et encaissés par branche</h2>",
        f'<div class="cols">{_branches_svg(figures.branches)}{_branch_table(figures.branches)}'
        "</div>",
        "<h2>Anomalies les plus fréquentes</h2>",
        _anomaly_table(figures.anomalies),
        "<h2>Employeurs à suivre</h2>",
        _employer_tables(employers),
        "<h2>Rapprochement</h2>",
        _reconciliation(figures.reconciliation),
        "<h2>Qualité des données</h2>",
        _data_docs(data_docs, figures.period),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Rapport EDI {_period(figures.period)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def _period(period: str) -> str:
    return f"{period[4:]}/{period[:4]}"


def _deadline_text(due: Deadline) -> str:
    text = f"Échéance : {due.ordinary:%d/%m/%Y}"
    if due.deadline != due.ordinary:
        text += f", prorogée au {due.deadline:%d/%m/%Y}"
    return text + f" ; en retard après le {due.late_after:%d/%m/%Y}."


def _cards(employers: pd.DataFrame, expected: pd.DataFrame) -> str:
    declared = int(expected["declared"].sum())
    share = f"{declared / len(expected):.0%}" if len(expected) else "—"
    cards = [
        ("attendus", f"{len(expected):,}", False),
        ("ont déclaré", f"{declared:,} ({share})", False),
        ("en retard", f"{int(employers['late'].sum()):,}", True),
        ("non déclarés", f"{len(expected) - declared:,}", True),
        ("sous-payés", f"{int(employers['underpaid'].sum()):,}", True),
        ("dû", format_mad(int(employers["due"].sum())), False),
        ("encaissé", format_mad(int(employers["paid"].sum())), False),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" alert" if alert else ""}"><b>{escape(value)}</b>'
            f"<span>{escape(label)}</span></div>"
            for label, value, alert in cards
        )
        + "</div>"
    )


def _svg(figure: object, salt: str) -> str:
    """A matplotlib figure as inline SVG markup: text kept as text, no metadata, ids salted
    per chart (two charts on a page must not share an id)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata=dict.fromkeys(SVG_METADATA))  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    markup = buffer.getvalue()
    return markup[markup.index("<svg") :]


def _campaign_svg(curve: pd.DataFrame, ordinary: dt.date, final: dt.date, expected: int) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.dates import DateFormatter, date2num

    figure, axes = plt.subplots(figsize=(9, 3.6), layout="constrained")
    axes.step(pd.to_datetime(curve["day"]), curve["share"] * 100, where="post", color=BLUE, lw=2)
    axes.axvline(date2num(ordinary), color=ORANGE, ls="--", label=f"échéance {ordinary:%d/%m}")
    if final != ordinary:
        axes.axvline(date2num(final), color=RED, ls=":", label=f"prorogation {final:%d/%m}")
    axes.set_ylim(0, 100)
    axes.set_ylabel(f"% des {expected:,} employeurs attendus")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    axes.xaxis.set_major_formatter(DateFormatter("%d/%m"))
    return _svg(figure, "campaign")


def _branches_svg(branches: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    shown = branches[(branches["due"] > 0) | (branches["paid"] > 0)]
    labels = [_branch(b) for b in shown["branch"]]
    rows = range(len(shown))
    figure, axes = plt.subplots(figsize=(6, 0.5 * len(shown) + 1.2), layout="constrained")
    axes.barh([r + 0.2 for r in rows], shown["due"] / 100, height=0.4, color=GREY, label="dû")
    axes.barh(
        [r - 0.2 for r in rows], shown["paid"] / 100, height=0.4, color=BLUE, label="encaissé"
    )
    axes.set_yticks(list(rows), labels)
    axes.invert_yaxis()
    axes.set_xlabel("MAD")
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda value, _: f"{value:,.0f}".replace(",", "\u202f"))
    )
    axes.legend(loc="lower right")
    return _svg(figure, "branches")


def _branch(code: str) -> str:
    return "Non affecté" if code == UNALLOCATED else BRANCH_LABELS_FR.get(code, code)


def _branch_table(branches: pd.DataFrame) -> str:
    rows = [
        (_branch(branch), format_mad(due), format_mad(paid))
        for branch, due, paid in _columns(branches, "branch", "due", "paid")
    ]
    rows.append(
        ("Total", format_mad(int(branches["due"].sum())), format_mad(int(branches["paid"].sum())))
    )
    return _table(["Branche", "Dû", "Encaissé"], rows, numeric={1, 2})


def _anomaly_table(anomalies: pd.DataFrame) -> str:
    if anomalies.empty:
        return "<p>Aucune anomalie sur les fichiers de la période.</p>"
    rows = [
        (code, severity, f"{count:,}", f"{files:,}")
        for code, severity, count, files in _columns(
            anomalies, "code", "severity", "count", "files"
        )
    ]
    return _table(["Code", "Gravité", "Anomalies", "Fichiers"], rows, numeric={2, 3})


def _employer_tables(employers: pd.DataFrame) -> str:
    expected = employers[employers["expected"]]
    late = employers[employers["late"]]
    underpaid = employers[employers["underpaid"]]
    parts = [
        (
            "Non déclarés",
            ["Affilié"],
            [[a] for (a,) in _columns(expected[~expected["declared"]], "affiliate")],
        ),
        (
            "En retard",
            ["Affilié", "Première déclaration"],
            [[a, f"{day:%d/%m/%Y}"] for a, day in _columns(late, "affiliate", "first_declared")],
        ),
        (
            "Sous-payés",
            ["Affilié", "Dû", "Encaissé", "Écart"],
            [
                [a, format_mad(due), format_mad(paid), format_mad(paid - due)]
                for a, due, paid in _columns(underpaid, "affiliate", "due", "paid")
            ],
        ),
    ]
    html = []
    for title, header, rows in parts:
        html.append(f"<h3>{escape(title)} ({len(rows):,})</h3>")
        listed = [[f"{row[0]:07d}", *row[1:]] for row in rows[:LISTED]]
        numeric = set(range(1, len(header)))
        html.append(_table(header, listed, numeric=numeric) if listed else "<p>Aucun.</p>")
        if len(rows) > LISTED:
            html.append(f'<p class="note">… et {len(rows) - LISTED:,} autres.</p>')
    return "".join(html)


def _columns(frame: pd.DataFrame, *names: str) -> list[tuple[Any, ...]]:
    """Rows of some columns as Python values (ints stay ints: no float on the way)."""
    return list(zip(*(frame[name].tolist() for name in names), strict=True))


def _reconciliation(summary: Mapping[str, object] | None) -> str:
    if not summary:
        return (
            '<p class="note">La période n\'est pas encore rapprochée (<code>cnss-edi reconcile'
            "</code>) : les sous-paiements ci-dessus comparent le montant dû de la déclaration "
            "en cours aux paiements reçus.</p>"
        )
    rows = [
        (label, format_mad(int(value)) if money else f"{int(value):,}")  # type: ignore[call-overload]
        for key, label, money in RECONCILED
        if (value := summary.get(key)) is not None
    ]
    when = summary.get("ran_at")
    head = f"Rapproché sur les données du {when:%d/%m/%Y à %H:%M}" if when else "Rapproché"
    return f"<p>{escape(head)} :</p>" + _table(["", ""], rows, numeric={1})


def _data_docs(href: str | None, period: str) -> str:
    if href is None:
        return (
            '<p class="note">Data Docs non générées : <code>cnss-edi quality --period '
            f"{escape(period)} --out</code> dans le dossier de ce rapport.</p>"
        )
    return f'<p><a href="{escape(href)}">Data Docs (Great Expectations) de la période</a></p>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: set[int]) -> str:
    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=n' if i in numeric else ''}>{escape(str(v))}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>"
