"""Per-employee rules on B02 (préétabli employees) and B04 (entrants) lines, vectorised."""

from __future__ import annotations

import numpy as np

from schemas import data_fields, situations
from transforms.keys import insured_key_from_digits
from transforms.parse import ZERO, Block, ParsedFile
from validators.anomaly import Hits, found_where
from validators.structure import ORDER

MAX_DAYS = 26
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


def check_b02(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    b02 = parsed.block("B02")
    line, number = b02.line, b02.number("N_Num_Assure")
    days, real, capped = (
        b02.number(n) for n in ("N_Jours_Declares", "N_Salaire_Reel", "N_Salaire_Plaf")
    )
    reverse, net = b02.number("N_AF_A_Reverser"), b02.number("N_AF_Net_A_Payer")
    rank = situation_ranks(b02)
    regular = regular_number(number, b02.valid("N_Num_Assure"))
    out = [
        found_where(
            "JOURS_HORS_LIMITES", days > MAX_DAYS, line, record="B02", field="N_Jours_Declares"
        ),
        found_where("SITUATION_INCONNUE", rank < 0, line, record="B02", field="L_Situation"),
        found_where(
            "ASSURE_INVALIDE",
            b02.valid("N_Num_Assure") & ~regular,
            line,
            record="B02",
            field="N_Num_Assure",
        ),
        _key_warnings(b02, regular),
    ]
    readable = b02.valid("N_Salaire_Reel") & b02.valid("N_Salaire_Plaf")
    if ceiling is not None:
        expected = np.minimum(real, ceiling)
        out.append(
            found_where(
                "PLAFOND",
                readable & (capped != expected),
                line,
                record="B02",
                field="N_Salaire_Plaf",
                expected=expected,
            )
        )
    active = (days != 0) | (real != 0) | (capped != 0)
    for code, situation in situations().items():
        if situation.zero_days_and_salary == "none":
            continue
        anomaly = (
            "SITUATION_MP_NON_NULS"
            if situation.zero_days_and_salary == "blocking"
            else "SITUATION_SANS_ACTIVITE"
        )
        out.append(
            found_where(
                anomaly,
                (rank == situation.rank) & active,
                line,
                record="B02",
                field="L_Situation",
                value=code,
            )
        )
    working = (rank == 0) & (days > 0) & (real == 0) & b02.valid("N_Salaire_Reel")
    out.append(
        found_where("SALAIRE_NUL_EN_ACTIVITE", working, line, record="B02", field="N_Salaire_Reel")
    )
    leaving = np.isin(rank, [situations()[c].rank for c in ("SO", "DE")])
    both = b02.valid("N_AF_A_Reverser") & b02.valid("N_AF_Net_A_Payer")
    out.append(
        found_where(
            "AF_A_REVERSER",
            leaving & both & (reverse != net),
            line,
            record="B02",
            field="N_AF_A_Reverser",
            expected=net,
        )
    )
    terms = (
        "N_Num_Assure",
        "N_AF_A_Reverser",
        "N_Jours_Declares",
        "N_Salaire_Reel",
        "N_Salaire_Plaf",
    )
    expected = number + reverse + days + real + capped + rank
    computable = np.logical_and.reduce([b02.valid(t) for t in terms]) & (rank >= 0)
    out.append(_control_sum(b02, computable, expected))
    return out


def check_b04(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    b04 = parsed.block("B04")
    empty = empty_entrants(parsed)
    out = []
    if len(b04) > 1:  # the empty B04 stands alone or not at all
        out.append(found_where("B04_VIDE_MAL_PLACE", empty, b04.line, record="B04"))
    real_line = ~empty
    line, number, known = b04.line, b04.number("N_Num_Assure"), b04.valid("N_Num_Assure")
    days, real, capped = (b04.number(n) for n in ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf"))
    occasional = known & (number == OCCASIONAL)
    unregistered = known & (number == NO_NUMBER_YET)
    regular = regular_number(number, known) & real_line
    out += [
        found_where(
            "CHAMP_NON_NUMERIQUE", real_line & ~known, line, record="B04", field="N_Num_Assure"
        ),
        found_where(
            "ASSURE_INVALIDE",
            real_line & known & ~(regular | occasional | unregistered),
            line,
            record="B04",
            field="N_Num_Assure",
        ),
        found_where(
            "ENTRANT_SANS_CIN",
            unregistered & b04.blank("L_Num_CIN"),
            line,
            record="B04",
            field="L_Num_CIN",
        ),
        found_where(
            "ENTRANT_SANS_NOM",
            real_line & ~occasional & b04.blank("L_Nom_Prenom"),
            line,
            record="B04",
            field="L_Nom_Prenom",
        ),
        found_where(
            "JOURS_HORS_LIMITES",
            real_line & (days > MAX_DAYS),
            line,
            record="B04",
            field="N_Nbr_Jours",
        ),
        _key_warnings(b04, regular),
    ]
    readable = real_line & b04.valid("N_Sal_Reel") & b04.valid("N_Sal_Plaf")
    if ceiling is not None:
        expected = np.minimum(real, ceiling)
        out.append(
            found_where(
                "PLAFOND",
                readable & ~occasional & (capped != expected),
                line,
                record="B04",
                field="N_Sal_Plaf",
                expected=expected,
            )
        )
    out.append(
        found_where(
            "PLAFOND_OCCASIONNEL",
            readable & occasional & (capped > real),
            line,
            record="B04",
            field="N_Sal_Plaf",
            expected=real,
        )
    )
    computable = (
        real_line
        & known
        & np.logical_and.reduce([b04.valid(t) for t in ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf")])
    )
    out.append(_control_sum(b04, computable, number + days + real + capped))
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
