"""The Anomaly record, its codes, severities and French messages, in one table.

Checks build anomalies as small pandas frames (one row per offending line, vectorised);
`collect` merges them, counts them all, keeps the first `cap` in file order and only then
formats values and messages, so a file with a million bad lines costs no million strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from schemas import field as layout_field
from transforms.parse import Lines

BLOCKING = "bloquante"
WARNING = "avertissement"
DEFAULT_CAP = 1000

# code: (severity, message). Placeholders: {record} {field} {value} {expected}.
RULES: dict[str, tuple[str, str]] = {
    "FICHIER_VIDE": (BLOCKING, "Le fichier est vide."),
    "BOM": (BLOCKING, "Le fichier commence par une marque BOM UTF-8 : enregistrez-le en ASCII."),
    "LONGUEUR_LIGNE": (BLOCKING, "La ligne fait {value} caractères au lieu de 260."),
    "CARACTERE_INTERDIT": (
        BLOCKING,
        "Caractère non ASCII ou de contrôle en position {value} : seuls les caractères ASCII "
        "imprimables sont admis.",
    ),
    "TYPE_ENREGISTREMENT": (
        BLOCKING,
        "Type d'enregistrement « {value} » inconnu ou hors de ce fichier.",
    ),
    "ORDRE_ENREGISTREMENTS": (
        BLOCKING,
        "Enregistrement {record} mal placé : il vient après {expected}.",
    ),
    "ENREGISTREMENT_MANQUANT": (BLOCKING, "Enregistrement {record} absent du fichier."),
    "ENREGISTREMENT_REPETE": (BLOCKING, "L'enregistrement {record} doit figurer une seule fois."),
    "CHAMP_NON_NUMERIQUE": (
        BLOCKING,
        "Le champ {field} doit être un nombre écrit en chiffres, complété par des zéros à gauche.",
    ),
    "CARACTERE_NON_ADMIS": (
        WARNING,
        "Le champ {field} contient un caractère hors de la liste admise (A-Z, 0-9, espace).",
    ),
    "CARACTERE_NON_ADMIS_ENTRANT": (
        BLOCKING,
        "Le nom, le prénom et la CIN d'un entrant n'admettent que A-Z, 0-9 et l'espace "
        "(cahier des charges IV-2.5).",
    ),
    "CATEGORIE": (BLOCKING, "L_Cat vaut « {value} » au lieu de « {expected} »."),
    "AFFILIE_INCOHERENT": (
        BLOCKING,
        "N° d'affilié {value} différent de celui de l'en-tête ({expected}).",
    ),
    "PERIODE_INCOHERENTE": (
        BLOCKING,
        "Période {value} différente de celle de l'en-tête ({expected}).",
    ),
    "PERIODE_INVALIDE": (BLOCKING, "Période {value} invalide : format attendu AAAAMM."),
    "PERIODE_HORS_BAREME": (
        BLOCKING,
        "Aucun barème de cotisations n'est connu pour la période {value}.",
    ),
    "NOM_FICHIER": (
        BLOCKING,
        "Le nom du fichier annonce {expected} mais le contenu déclare {value}.",
    ),
    "COMPTE_DEPOSANT": (
        BLOCKING,
        "Le fichier déclare l'affilié {value} mais a été déposé par le compte "
        "de l'affilié {expected}.",
    ),
    "CLE_AFFILIE": (
        WARNING,
        "Clé de contrôle du n° d'affilié {value} incorrecte (attendue : {expected}).",
    ),
    "CLE_ASSURE": (
        WARNING,
        "Clé de contrôle du n° d'immatriculation {value} incorrecte (attendue : {expected}).",
    ),
    "ASSURE_INVALIDE": (
        BLOCKING,
        "N° d'immatriculation {value} invalide : 9 chiffres commençant par 1.",
    ),
    "ASSURE_EN_DOUBLE": (
        BLOCKING,
        "L'assuré {value} est déclaré plusieurs fois (aussi ligne {expected}).",
    ),
    "ENTRANT_SANS_CIN": (
        BLOCKING,
        "Un entrant sans n° d'immatriculation (000000000) doit avoir sa CIN.",
    ),
    "ENTRANT_SANS_NOM": (
        BLOCKING,
        "Le nom et le prénom sont obligatoires pour un entrant non occasionnel.",
    ),
    "B04_VIDE_MAL_PLACE": (
        BLOCKING,
        "Un B04 vide n'est admis que seul, quand il n'y a aucun entrant.",
    ),
    "JOURS_HORS_LIMITES": (BLOCKING, "{value} jours déclarés : 26 au plus par mois."),
    "PLAFOND": (
        BLOCKING,
        "Salaire plafonné {value} incorrect : attendu {expected} (plafond de la période).",
    ),
    "PLAFOND_OCCASIONNEL": (
        BLOCKING,
        "Salaire plafonné {value} supérieur au salaire réel {expected}.",
    ),
    "SITUATION_INCONNUE": (BLOCKING, "Code de situation « {value} » inconnu."),
    "SITUATION_MP_NON_NULS": (
        BLOCKING,
        "Situation MP : les jours et les salaires doivent être nuls (cahier des charges IV-2.3).",
    ),
    "SITUATION_SANS_ACTIVITE": (WARNING, "Situation {value} : jours et salaires attendus à zéro."),
    "SALAIRE_NUL_EN_ACTIVITE": (
        WARNING,
        "Jours déclarés sans salaire pour un salarié en activité.",
    ),
    "AF_A_REVERSER": (
        BLOCKING,
        "Sortant ou décédé : l'AF à reverser ({value}) doit égaler l'AF net à payer ({expected}).",
    ),
    "SOMME_CONTROLE": (BLOCKING, "Somme de contrôle {value} erronée : attendu {expected}."),
    "TOTAL_INCORRECT": (BLOCKING, "Total {field} = {value}, la somme des lignes donne {expected}."),
    "TOTAL_DEPASSEMENT": (
        BLOCKING,
        "La somme des lignes ({expected}) ne tient pas dans le champ {field} : "
        "scindez la déclaration.",
    ),
    "PREETABLI_AUTRE": (
        BLOCKING,
        "Le préétabli fourni concerne {expected}, la déclaration {value}.",
    ),
    "PREETABLI_TRANSFERT": (
        BLOCKING,
        "N_Identif_Transfert {value} différent de celui du préétabli ({expected}).",
    ),
    "PREETABLI_NON_DECLARE": (BLOCKING, "L'assuré {value} du préétabli n'est pas déclaré en B02."),
    "HORS_PREETABLI": (
        BLOCKING,
        "L'assuré {value} n'est pas dans le préétabli : déclarez-le comme entrant (B04).",
    ),
    "ENTRANT_DANS_PREETABLI": (
        BLOCKING,
        "L'entrant {value} figure au préétabli : déclarez-le en B02.",
    ),
    "AF_REVERSER_SUPERIEUR": (
        BLOCKING,
        "AF à reverser {value} supérieure à l'AF net du préétabli ({expected}).",
    ),
    "PREETABLI_AF_DIFFERENTE": (
        BLOCKING,
        "{field} = {value} ne reprend pas la valeur du préétabli ({expected}).",
    ),
    "ENFANTS_DIFFERENT": (WARNING, "Nombre d'enfants {value} différent du préétabli ({expected})."),
}

COLUMNS = ["code", "line", "record", "field", "value", "expected"]


@dataclass(frozen=True)
class Anomaly:
    """One finding, with everything a payroll clerk needs to find and fix it."""

    code: str
    severity: str
    line: int | None
    record: str | None
    field: str | None
    value: str | None
    message: str

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def found(
    code: str,
    lines: Iterable[int] | np.ndarray | pd.Series,
    *,
    record: str | None = None,
    field: str | None = None,
    value: object = None,
    expected: object = None,
) -> pd.DataFrame:
    """Anomaly rows for the given 1-based line numbers (value/expected: scalar or per line)."""
    if code not in RULES:
        raise KeyError(code)  # a programming error, never a data error
    line = pd.array(
        np.asarray(lines, dtype=np.int64)
        if not isinstance(lines, pd.Series)
        else lines.to_numpy(dtype=np.int64),
        dtype="Int64",
    )
    frame = pd.DataFrame(
        {"code": code, "line": line, "record": record, "field": field}, index=range(len(line))
    )
    frame["value"] = _as_text(value, len(line))
    frame["expected"] = _as_text(expected, len(line))
    return frame


def file_level(
    code: str,
    *,
    record: str | None = None,
    value: object = None,
    expected: object = None,
    line: int | None = None,
) -> pd.DataFrame:
    """One anomaly about the file as a whole (line may be unknown)."""
    frame = found(code, [0], record=record, value=value, expected=expected)
    frame["line"] = pd.array([line], dtype="Int64")
    return frame


def _as_text(value: object, n: int) -> pd.Series:
    if isinstance(value, pd.Series | np.ndarray | list):
        return pd.Series(np.asarray(value), index=range(n)).astype("string")
    return pd.Series([None if value is None else str(value)] * n, index=range(n), dtype="string")


@dataclass(frozen=True)
class Findings:
    """The anomalies kept for the report, plus how many there were in all."""

    anomalies: tuple[Anomaly, ...]
    total: int
    blocking_total: int

    @property
    def rejected(self) -> bool:
        return self.blocking_total > 0


def collect(frames: Iterable[pd.DataFrame], lines: Lines, *, cap: int = DEFAULT_CAP) -> Findings:
    """Merge anomaly frames, count them, keep the first `cap` in file order, format those."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return Findings((), 0, 0)
    every = pd.concat(frames, ignore_index=True)
    severity = every["code"].map(lambda c: RULES[c][0])
    blocking_total = int((severity == BLOCKING).sum())
    every["order"] = every["line"].fillna(0)
    kept = every.sort_values(["order"], kind="stable").head(cap)
    anomalies = tuple(_format(row, lines) for row in kept.itertuples(index=False))
    return Findings(anomalies, len(every), blocking_total)


def _format(row: object, lines: Lines) -> Anomaly:
    value = None if pd.isna(row.value) else row.value
    line = None if pd.isna(row.line) or row.line <= 0 else int(row.line)
    if value is None and row.field and row.record and line is not None and line <= lines.count:
        f = layout_field(row.record, row.field)
        value = lines.text([line], f.start, f.stop)[0].strip()
    expected = None if pd.isna(row.expected) else row.expected
    severity, template = RULES[row.code]
    message = template.format(
        record=row.record or "",
        field=row.field or "",
        value=value if value is not None else "",
        expected=expected or "",
    )
    return Anomaly(row.code, severity, line, row.record, row.field, value, message)
