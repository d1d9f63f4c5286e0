"""validators.anomaly: the RULES table, found/file_level frames, and collect's cap and order."""

from __future__ import annotations

import re
import string

import numpy as np
import pytest

from tests.edi import declaration, get_field, set_field
from transforms.parse import split_lines
from validators.anomaly import (
    BLOCKING,
    RULES,
    WARNING,
    Anomaly,
    Findings,
    collect,
    file_level,
    found,
)

PLACEHOLDERS = {"record", "field", "value", "expected"}


def lines_with_days(days: int = 27):
    """The sample's Lines with B02 line 3 declaring `days` days."""
    return split_lines(set_field(declaration(), 3, "B02", "N_Jours_Declares", days))


# --- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_is_well_formed(code):
    severity, template = RULES[code]
    assert severity in (BLOCKING, WARNING)
    assert re.fullmatch(r"[A-Z0-9_]+", code)
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    assert names <= PLACEHOLDERS, names
    message = template.format(record="B02", field="S_Ctr", value="«V»", expected="«E»")
    assert template[0].isupper() or template.startswith("{"), template
    assert message.endswith("."), message
    if "value" in names:
        assert "«V»" in message


def test_messages_are_french():
    # A few words every clerk will see; not a translation check, a guard against English.
    assert RULES["FICHIER_VIDE"][1] == "Le fichier est vide."
    assert "jours déclarés" in RULES["JOURS_HORS_LIMITES"][1]
    english = re.compile(r"\b(the|is|must|line|file|should)\b", re.IGNORECASE)
    for code, (_, template) in RULES.items():
        assert not english.search(template), code


def test_check_keys_are_warnings_only():
    # edi_format.md §13: the key formula fails on 8 of 66 real numbers, never a rejection.
    assert RULES["CLE_AFFILIE"][0] == RULES["CLE_ASSURE"][0] == WARNING


# --- found / file_level (opaque: only what collect makes of them is asserted) ---------------


def test_found_gives_one_anomaly_per_line():
    findings = collect(
        [
            found(
                "JOURS_HORS_LIMITES",
                np.array([3, 5]),
                record="B02",
                field="N_Jours_Declares",
                value=["27", "30"],
            ),
            found("PLAFOND", [4], record="B02", field="N_Salaire_Plaf", expected=600_000),
        ],
        lines_with_days(),
    )
    assert [(a.line, a.code, a.value) for a in findings.anomalies] == [
        (3, "JOURS_HORS_LIMITES", "27"),
        (4, "PLAFOND", get_field(declaration(), 4, "B02", "N_Salaire_Plaf")),
        (5, "JOURS_HORS_LIMITES", "30"),
    ]
    assert findings.anomalies[1].message.endswith("attendu 600000 (plafond de la période).")
    assert findings.anomalies[2].message == "30 jours déclarés : 26 au plus par mois."


def test_found_of_no_line_is_empty():
    assert len(found("PLAFOND", [])) == 0
    assert len(found("PLAFOND", np.array([], dtype=np.int64))) == 0
    assert len(found("PLAFOND", [7, 8, 9])) == 3


def test_unknown_code_raises_key_error():
    with pytest.raises(KeyError):
        found("PAS_UNE_REGLE", [1])
    with pytest.raises(KeyError):
        file_level("PAS_UNE_REGLE")


def test_file_level_has_an_optional_line():
    lines = lines_with_days()
    (no_line,) = collect([file_level("ENREGISTREMENT_MANQUANT", record="B06")], lines).anomalies
    assert (no_line.line, no_line.record, no_line.field) == (None, "B06", None)
    assert no_line.message == "Enregistrement B06 absent du fichier."
    (first,) = collect([file_level("BOM", line=1)], lines).anomalies
    assert first.line == 1


# --- collect ----------------------------------------------------------------------------------


def test_collect_of_nothing():
    findings = collect([found("PLAFOND", [])], split_lines(b""))
    assert findings == Findings((), 0, 0)
    assert not findings.rejected


def test_collect_keeps_file_order_and_file_level_first():
    lines = lines_with_days()
    frames = [
        found("SOMME_CONTROLE", [9, 3], record="B02", field="S_Ctr", value="x"),
        found("CARACTERE_NON_ADMIS", [5], record="B02", field="L_Nom_Prenom"),
        file_level("ENREGISTREMENT_MANQUANT", record="B06"),
        found("JOURS_HORS_LIMITES", [3], record="B02", field="N_Jours_Declares"),
    ]
    findings = collect(frames, lines)
    order = [(a.line, a.code) for a in findings.anomalies]
    # Line-less first, then by line; equal lines keep the order the checks produced them.
    assert order == [
        (None, "ENREGISTREMENT_MANQUANT"),
        (3, "SOMME_CONTROLE"),
        (3, "JOURS_HORS_LIMITES"),
        (5, "CARACTERE_NON_ADMIS"),
        (9, "SOMME_CONTROLE"),
    ]
    assert findings.total == 5
    assert findings.blocking_total == 4  # CARACTERE_NON_ADMIS is a warning
    assert findings.rejected


@pytest.mark.parametrize("cap", [0, 1, 5, 39])
def test_collect_caps_but_counts_all(cap):
    lines = lines_with_days()
    frames = [
        found("CARACTERE_NON_ADMIS", np.arange(20, 0, -1), record="B02", field="L_Nom_Prenom"),
        found("JOURS_HORS_LIMITES", np.arange(1, 21), record="B02", field="N_Jours_Declares"),
    ]
    findings = collect(frames, lines, cap=cap)
    assert len(findings.anomalies) == min(cap, 40)
    assert findings.total == 40
    assert findings.blocking_total == 20  # counted over all 40, not over the kept ones
    lines_kept = [a.line for a in findings.anomalies]
    assert lines_kept == sorted(lines_kept)
    uncapped = collect(frames, lines, cap=1000)
    assert findings.anomalies == uncapped.anomalies[:cap]


def test_collect_fills_value_from_the_raw_line():
    lines = lines_with_days(27)
    (anomaly,) = collect(
        [found("JOURS_HORS_LIMITES", [3], record="B02", field="N_Jours_Declares")], lines
    ).anomalies
    assert anomaly == Anomaly(
        code="JOURS_HORS_LIMITES",
        severity=BLOCKING,
        line=3,
        record="B02",
        field="N_Jours_Declares",
        value="27",
        message="27 jours déclarés : 26 au plus par mois.",
    )
    assert anomaly.blocking
    assert anomaly.as_dict()["value"] == "27"


def test_given_value_wins_and_missing_lines_stay_empty():
    lines = lines_with_days(27)
    given = found("JOURS_HORS_LIMITES", [3], record="B02", field="N_Jours_Declares", value="99")
    beyond = found("JOURS_HORS_LIMITES", [500], record="B02", field="N_Jours_Declares")
    anomalies = collect([given, beyond], lines).anomalies
    assert [(a.line, a.value) for a in anomalies] == [(3, "99"), (500, None)]


def test_message_carries_value_and_expected():
    lines = lines_with_days()
    raw_expected = found(
        "PLAFOND", [3], record="B02", field="N_Salaire_Plaf", expected=np.array([600_000])
    )
    (anomaly,) = collect([raw_expected], lines).anomalies
    capped = anomaly.value
    assert capped is not None
    assert capped.isdigit()
    assert len(capped) == 9
    assert anomaly.message == (
        f"Salaire plafonné {capped} incorrect : attendu 600000 (plafond de la période)."
    )


def test_line_zero_is_no_line():
    (anomaly,) = collect([found("BOM", [0])], lines_with_days()).anomalies
    assert anomaly.line is None
