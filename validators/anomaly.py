"""The Anomaly record, its codes, severities and French messages, in one table.

Checks report `Hits`: one code and the offending lines, as a mask over a block's line numbers
(vectorised, nothing copied per hit); `collect` counts them all, keeps the first `cap` in file
order and only then formats values and messages, so a file with a million bad lines costs no
million strings, nor a million-entry index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from schemas import RECORD_LENGTH, limits
from schemas import field as layout_field
from transforms.parse import Lines

BLOCKING = "bloquante"
WARNING = "avertissement"
DEFAULT_CAP = 1000

# code: (severity, message). Placeholders: {record} {field} {value} {expected}.
RULES: dict[str, tuple[str, str]] = {
    "FICHIER_VIDE": (BLOCKING, "Le fichier est vide."),
    "TROP_DE_LIGNES": (
        BLOCKING,
        "Le fichier compte au moins {value} lignes, plus que la plus grande déclaration "
        "possible ({expected} lignes) : ses lignes n'ont pas été lues.",
    ),
    "FICHIER_TROP_GRAND": (
        BLOCKING,
        "Le fichier fait {value} octets, plus que la plus grande déclaration possible "
        "({expected} octets) : il n'a pas été lu.",
    ),
    "BOM": (BLOCKING, "Le fichier commence par une marque BOM UTF-8 : enregistrez-le en ASCII."),
    "LONGUEUR_LIGNE": (
        BLOCKING,
        "La ligne fait {value} caractères au lieu de " + f"{RECORD_LENGTH}.",
    ),
    "LIGNE_VIDE_FINALE": (
        WARNING,
        "Ligne vide en fin de fichier, ignorée : le fichier se termine normalement par le "
        "retour à la ligne de son dernier enregistrement.",
    ),
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
    "DATE_INVALIDE": (BLOCKING, "Date {value} invalide dans {field} : format attendu AAAAMMJJ."),
    "PERIODE_INVALIDE": (BLOCKING, "Période {value} invalide : format attendu AAAAMM."),
    "PERIODE_FUTURE": (
        BLOCKING,
        "La période {value} n'a pas encore commencé (reçu le {expected}) : vérifiez L_Periode.",
    ),
    "PERIODE_EN_COURS": (
        WARNING,
        "La période {value} n'est pas terminée (reçu le {expected}) : une déclaration porte "
        "sur un mois échu, vérifiez L_Periode.",
    ),
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
        "Le fichier déclare l'affilié {value}, pour lequel le compte déposant {expected} "
        "ne déclare pas.",
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
    "JOURS_HORS_LIMITES": (
        BLOCKING,
        "{value} jours déclarés : " + f"{limits().max_days} au plus par mois.",
    ),
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
    # The file's context (where, when and under which name it came), not its bytes.
    "PREETABLI_DEPOSE": (
        BLOCKING,
        "Un préétabli est émis par la CNSS : il ne peut pas être déposé par un déclarant.",
    ),
    "NOM_FICHIER_INVALIDE": (
        BLOCKING,
        "Le nom du fichier contient des caractères non admis (contrôle, non UTF-8) ou est trop "
        "long : renommez-le, par exemple DS_<affilié>_<AAAAMM>.txt.",
    ),
}
# Rejections for these say nothing of the bytes: the same bytes sent again under the right
# name, in the right box or at the right time are judged again, never called a duplicate.
CONTEXT_CODES = frozenset(
    {"NOM_FICHIER", "NOM_FICHIER_INVALIDE", "COMPTE_DEPOSANT", "PREETABLI_DEPOSE", "PERIODE_FUTURE"}
)


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


SCAN = 1 << 20  # mask entries looked at per step when seeking the first hits


@dataclass(frozen=True)
class Hits:
    """Lines that break one rule: the entries of `lines` where `mask` is true (all of them
    without a mask). `value`/`expected` are a scalar, one item per entry of `lines`, or a
    function of the entry's position; a missing value is read from the line's field when
    the report is written."""

    code: str
    lines: np.ndarray  # 1-based line numbers; 0 when the anomaly is about the whole file
    record: str | None = None
    field: str | None = None
    value: object = None
    expected: object = None
    mask: np.ndarray | None = None

    @cached_property
    def count(self) -> int:
        return len(self.lines) if self.mask is None else int(np.count_nonzero(self.mask))

    def __len__(self) -> int:
        return self.count

    def first(self, cap: int) -> np.ndarray:
        """Positions in `lines` of the first `cap` hits in file order, equal lines in position
        order: what a stable sort of all hits by line would put first."""
        if _ascending(self.lines):
            if self.mask is None:
                return np.arange(min(cap, len(self.lines)))
            return _first_true(self.mask, cap)
        at = np.arange(len(self.lines)) if self.mask is None else np.flatnonzero(self.mask)
        return at[np.argsort(self.lines[at], kind="stable")[:cap]]

    def item(self, attribute: str, index: int) -> str | None:
        value = getattr(self, attribute)
        if callable(value):
            value = value(index)
        elif isinstance(value, np.ndarray | list | tuple):
            value = value[index]
        return None if value is None else str(value)


def _ascending(lines: np.ndarray) -> bool:
    return lines.size < 2 or bool((lines[1:] >= lines[:-1]).all())


def _first_true(mask: np.ndarray, cap: int) -> np.ndarray:
    """np.flatnonzero(mask)[:cap], without listing every true entry of a huge mask."""
    found_at: list[np.ndarray] = []
    wanted = cap
    for lo in range(0, mask.size, SCAN):
        at = np.flatnonzero(mask[lo : lo + SCAN])[:wanted] + lo
        found_at.append(at)
        wanted -= at.size
        if wanted <= 0:
            break
    return np.concatenate(found_at) if found_at else np.empty(0, np.int64)


def found(
    code: str,
    lines: Iterable[int] | np.ndarray,
    *,
    record: str | None = None,
    field: str | None = None,
    value: object = None,
    expected: object = None,
) -> Hits:
    """The given 1-based line numbers break rule `code` (value/expected: scalar, per line, or
    a function of the position in `lines`)."""
    if code not in RULES:
        raise KeyError(code)  # a programming error, never a data error
    lines = np.asarray(lines).ravel()
    if lines.dtype.kind not in "iu":  # an empty list, or floats: never a line number
        lines = lines.astype(np.int64)
    return Hits(code, lines, record, field, value, expected)


def found_where(
    code: str,
    mask: np.ndarray,
    line: np.ndarray,
    *,
    record: str | None = None,
    field: str | None = None,
    value: object = None,
    expected: object = None,
) -> Hits:
    """`found` for the lines where `mask` is true; per-line details are given for every
    entry of `line` and read only for the hits that are reported."""
    if code not in RULES:
        raise KeyError(code)
    mask = np.asarray(mask, dtype=bool)
    return Hits(code, np.asarray(line), record, field, value, expected, mask)


def file_level(
    code: str,
    *,
    record: str | None = None,
    value: object = None,
    expected: object = None,
    line: int | None = None,
) -> Hits:
    """One anomaly about the file as a whole (line may be unknown)."""
    return found(code, [line or 0], record=record, value=value, expected=expected)


@dataclass(frozen=True)
class Findings:
    """The anomalies kept for the report, plus how many there were in all."""

    anomalies: tuple[Anomaly, ...]
    total: int
    blocking_total: int

    @property
    def rejected(self) -> bool:
        return self.blocking_total > 0


def collect(hits: Iterable[Hits], lines: Lines, *, cap: int = DEFAULT_CAP) -> Findings:
    """Merge hits, count them, keep the first `cap` in file order, format only those."""
    hits = [h for h in hits if len(h)]
    if not hits:
        return Findings((), 0, 0)
    total = sum(len(h) for h in hits)
    blocking_total = sum(len(h) for h in hits if RULES[h.code][0] == BLOCKING)
    # The first `cap` of all hits are among each rule's own first `cap`: only those are sorted.
    firsts = [h.first(cap) for h in hits]
    which = np.repeat(np.arange(len(hits)), [len(f) for f in firsts])
    position = np.concatenate(firsts)
    candidates = np.concatenate([h.lines[f] for h, f in zip(hits, firsts, strict=True)])
    order = np.argsort(candidates, kind="stable")[:cap]
    anomalies = tuple(_format(hits[which[i]], int(position[i]), lines) for i in order)
    return Findings(anomalies, total, blocking_total)


def _format(hit: Hits, index: int, lines: Lines) -> Anomaly:
    line = int(hit.lines[index]) or None
    value = hit.item("value", index)
    if value is None and hit.field and hit.record and line is not None and line <= lines.count:
        f = layout_field(hit.record, hit.field)
        value = lines.text(np.array([line]), f.start, f.stop)[0].strip()
    expected = hit.item("expected", index)
    severity, template = RULES[hit.code]
    message = template.format(
        record=hit.record or "",
        field=hit.field or "",
        value=value if value is not None else "",
        expected=expected or "",
    )
    return Anomaly(hit.code, severity, line, hit.record, hit.field, value, message)
