"""Per-employee rules on B02 (préétabli employees) and B04 (entrants) lines, vectorised."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from schemas import data_fields, limits, situations
from transforms.keys import insured_key_from_digits
from transforms.parse import ZERO, Block, ParsedFile
from validators.anomaly import Hits, found_where
from validators.structure import ORDER

OCCASIONAL = 999_999_999  # main-d'œuvre occasionnelle, B04 only
NO_NUMBER_YET = 0  # entrant not yet registered: the CIN is then required
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[*range(ord("A"), ord("Z") + 1), *range(ord("0"), ord("9") + 1), ord(" ")]] = True
_ALLOWED_BYTES = bytes(np.flatnonzero(_ALLOWED).astype(np.uint8))


def regular_number(numbers: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """9 digits starting with 1; 100000000 is refused by the portal (DMC)."""
    return valid & (numbers >= 100_000_001) & (numbers <= 199_999_999)


def empty_entrants(parsed: ParsedFile) -> np.ndarray:
    """Per B04 line: is it the 'empty B04' written when there is no entrant (edi_format §6)?"""
    b04 = parsed.block("B04")
    empty = b04.blank("N_Num_Assure") & b04.blank("L_Nom_Prenom") & b04.blank("L_Num_CIN")
    for name in ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf", "S_Ctr"):
        empty &= b04.valid(name) & (b04.number(name) == 0)
    return empty


def situation_ranks(b02: Block) -> np.ndarray:
    """Rank of each line's situation code in S_Ctr, -1 for an unknown code."""
    codes = b02.packed("L_Situation").view(np.uint16).ravel()
    rank = np.full(len(b02), -1)
    for code, situation in situations().items():  # two bytes as one integer: cheap compares
        rank[codes == np.frombuffer(code.ljust(2).encode(), np.uint16)[0]] = situation.rank
    return rank


def check_characters(parsed: ParsedFile, kind: str) -> list[Hits]:
    """AN fields use A-Z, 0-9 and space: an error for entrants' names and CIN, else a warning."""
    out = []
    for record in ORDER[kind]:
        block = parsed.block(record)
        for f in data_fields(record):
            if f.numeric or not len(block):
                continue
            if not block.packed(f.name).tobytes().translate(None, _ALLOWED_BYTES):
                continue  # the usual case, checked at memory speed
            bad = ~_ALLOWED[block.raw(f.name)].all(axis=1)
            strict = record == "B04" and f.name in ("L_Nom_Prenom", "L_Num_CIN")
            code = "CARACTERE_NON_ADMIS_ENTRANT" if strict else "CARACTERE_NON_ADMIS"
            out.append(found_where(code, bad, block.line, record=record, field=f.name))
    return out


def _reporter(block: Block) -> Callable[..., Hits]:
    """found_where bound to one block: report(code, mask, field, value=..., expected=...)."""

    def report(code: str, mask: np.ndarray, field: str | None = None, **details: object) -> Hits:
        return found_where(code, mask, block.line, record=block.record, field=field, **details)

    return report


def check_b02(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    b02 = parsed.block("B02")
    report = _reporter(b02)
    number, days = b02.number("N_Num_Assure"), b02.number("N_Jours_Declares")
    real, capped = b02.number("N_Salaire_Reel"), b02.number("N_Salaire_Plaf")
    reverse, net = b02.number("N_AF_A_Reverser"), b02.number("N_AF_Net_A_Payer")
    rank = situation_ranks(b02)
    regular = regular_number(number, b02.valid("N_Num_Assure"))
    readable = b02.valid("N_Salaire_Reel") & b02.valid("N_Salaire_Plaf")
    out = [
        _days(report, days, "N_Jours_Declares"),
        report("SITUATION_INCONNUE", rank < 0, "L_Situation"),
        report("ASSURE_INVALIDE", b02.valid("N_Num_Assure") & ~regular, "N_Num_Assure"),
        _key_warnings(b02, regular),
        *_ceiling(report, "N_Salaire_Plaf", readable, real, capped, ceiling),
        *_situations(report, rank, active=(days != 0) | (real != 0) | (capped != 0)),
        report(
            "SALAIRE_NUL_EN_ACTIVITE",
            (rank == 0) & (days > 0) & (real == 0) & b02.valid("N_Salaire_Reel"),
            "N_Salaire_Reel",
        ),
    ]
    # Sortant or décédé: the AF paid in advance comes back (cahier IV-3, IV-4).
    leaving = np.isin(rank, [s.rank for s in situations().values() if s.af_reversed])
    both = b02.valid("N_AF_A_Reverser") & b02.valid("N_AF_Net_A_Payer")
    out.append(
        report("AF_A_REVERSER", leaving & both & (reverse != net), "N_AF_A_Reverser", expected=net)
    )
    terms = (
        "N_Num_Assure",
        "N_AF_A_Reverser",
        "N_Jours_Declares",
        "N_Salaire_Reel",
        "N_Salaire_Plaf",
    )
    computable = np.logical_and.reduce([b02.valid(t) for t in terms]) & (rank >= 0)
    out.append(_control_sum(b02, computable, number + reverse + days + real + capped + rank))
    return out


def check_b04(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    b04 = parsed.block("B04")
    report = _reporter(b04)
    empty = empty_entrants(parsed)
    out = []
    if len(b04) > 1:  # the empty B04 stands alone or not at all
        out.append(report("B04_VIDE_MAL_PLACE", empty))
    entrant = ~empty
    number, known = b04.number("N_Num_Assure"), b04.valid("N_Num_Assure")
    days, real, capped = (b04.number(n) for n in ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf"))
    occasional = known & (number == OCCASIONAL)
    unregistered = known & (number == NO_NUMBER_YET)
    regular = regular_number(number, known) & entrant
    readable = entrant & b04.valid("N_Sal_Reel") & b04.valid("N_Sal_Plaf")
    out += [
        report("CHAMP_NON_NUMERIQUE", entrant & ~known, "N_Num_Assure"),
        report(
            "ASSURE_INVALIDE",
            entrant & known & ~(regular | occasional | unregistered),
            "N_Num_Assure",
        ),
        report("ENTRANT_SANS_CIN", unregistered & b04.blank("L_Num_CIN"), "L_Num_CIN"),
        report(
            "ENTRANT_SANS_NOM", entrant & ~occasional & b04.blank("L_Nom_Prenom"), "L_Nom_Prenom"
        ),
        _days(report, days, "N_Nbr_Jours", entrant),
        _key_warnings(b04, regular),
        *_ceiling(report, "N_Sal_Plaf", readable & ~occasional, real, capped, ceiling),
        # Occasional labour is only bound by its real salary (cahier IV-3).
        report(
            "PLAFOND_OCCASIONNEL",
            readable & occasional & (capped > real),
            "N_Sal_Plaf",
            expected=real,
        ),
    ]
    terms = ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf")
    computable = entrant & known & np.logical_and.reduce([b04.valid(t) for t in terms])
    out.append(_control_sum(b04, computable, number + days + real + capped))
    return out


def _days(
    report: Callable[..., Hits], days: np.ndarray, field: str, mask: np.ndarray | bool = True
) -> Hits:
    """No more declared days than the month allows (edi_format.md §11)."""
    return report("JOURS_HORS_LIMITES", mask & (days > limits().max_days), field)


def _ceiling(
    report: Callable[..., Hits],
    field: str,
    mask: np.ndarray,
    real: np.ndarray,
    capped: np.ndarray,
    ceiling: int | None,
) -> list[Hits]:
    """Capped salary = min(real, ceiling of the period)."""
    if ceiling is None:  # no ceiling in force: reported as PERIODE_HORS_BAREME
        return []
    expected = np.minimum(real, ceiling)
    return [report("PLAFOND", mask & (capped != expected), field, expected=expected)]


def _situations(report: Callable[..., Hits], rank: np.ndarray, active: np.ndarray) -> list[Hits]:
    """Situations that allow no days or salary: MP by the cahier, SO/CS/MS by practice."""
    out = []
    for code, situation in situations().items():
        if situation.zero_days_and_salary == "none":
            continue
        blocking = situation.zero_days_and_salary == "blocking"
        anomaly = "SITUATION_MP_NON_NULS" if blocking else "SITUATION_SANS_ACTIVITE"
        out.append(report(anomaly, (rank == situation.rank) & active, "L_Situation", value=code))
    return out


def check_duplicates(parsed: ParsedFile) -> list[Hits]:
    """An insured number declared twice, across B02 and the entrants (B04)."""
    blocks = [parsed.block("B02"), parsed.block("B04")]
    numbers, lines, origin = [], [], []
    for index, block in enumerate(blocks):
        keep = regular_number(block.number("N_Num_Assure"), block.valid("N_Num_Assure"))
        numbers.append(block.number("N_Num_Assure")[keep])
        lines.append(block.line[keep])
        origin.append(np.full(keep.sum(), index))
    numbers, lines, origin = (np.concatenate(a) for a in (numbers, lines, origin))
    order = np.lexsort((lines, numbers))
    numbers, lines, origin = numbers[order], lines[order], origin[order]
    repeated = np.concatenate(([False], numbers[1:] == numbers[:-1]))
    group_start = np.maximum.accumulate(np.where(~repeated, np.arange(len(numbers)), 0))
    first_line = lines[group_start]
    return [
        found_where(
            "ASSURE_EN_DOUBLE",
            repeated & (origin == index),
            lines,
            record=block.record,
            field="N_Num_Assure",
            expected=first_line,
        )
        for index, block in enumerate(blocks)
    ]


def _key_warnings(block: Block, regular: np.ndarray) -> Hits:
    digits = block.raw("N_Num_Assure") - np.uint8(ZERO)
    key = insured_key_from_digits(digits)
    wrong = regular & (key != digits[:, 8])
    return found_where(
        "CLE_ASSURE", wrong, block.line, record=block.record, field="N_Num_Assure", expected=key
    )


def _control_sum(block: Block, computable: np.ndarray, expected: np.ndarray) -> Hits:
    """S_Ctr recomputed; lines with an unreadable term are already reported elsewhere."""
    wrong = computable & block.valid("S_Ctr") & (block.number("S_Ctr") != expected)
    return found_where(
        "SOMME_CONTROLE", wrong, block.line, record=block.record, field="S_Ctr", expected=expected
    )
