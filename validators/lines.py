"""Per-employee rules on B02 (préétabli employees) and B04 (entrants) lines, vectorised."""

from __future__ import annotations

from dataclasses import dataclass

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
            # translate(None, allowed) deletes every allowed byte: nothing left means the
            # whole column is clean, checked at memory speed (the usual case).
            if not block.packed(f.name).tobytes().translate(None, _ALLOWED_BYTES):
                continue
            bad = ~_ALLOWED[block.raw(f.name)].all(axis=1)
            strict = record == "B04" and f.name in ("L_Nom_Prenom", "L_Num_CIN")
            code = "CARACTERE_NON_ADMIS_ENTRANT" if strict else "CARACTERE_NON_ADMIS"
            out.append(found_where(code, bad, block.line, record=record, field=f.name))
    return out


# Day and salary fields of the two per-employee records (edi_format.md §5).
PAY_FIELDS = {
    "B02": ("N_Jours_Declares", "N_Salaire_Reel", "N_Salaire_Plaf"),
    "B04": ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf"),
}


@dataclass(frozen=True)
class Employees:
    """The columns the per-employee rules read, named alike for B02 and B04.

    `judged` masks the lines the rules apply to: every B02, the real entrants of B04.
    """

    block: Block
    judged: np.ndarray
    number: np.ndarray
    known: np.ndarray  # the insured number is all digits
    regular: np.ndarray  # a judged line with a registered insured number
    days: np.ndarray
    real: np.ndarray
    capped: np.ndarray
    readable: np.ndarray  # a judged line whose two salaries are all digits

    @classmethod
    def of(cls, block: Block, judged: np.ndarray) -> Employees:
        days, real, capped = PAY_FIELDS[block.record]
        number, known = block.number("N_Num_Assure"), block.valid("N_Num_Assure")
        return cls(
            block=block,
            judged=judged,
            number=number,
            known=known,
            regular=regular_number(number, known) & judged,
            days=block.number(days),
            real=block.number(real),
            capped=block.number(capped),
            readable=judged & block.valid(real) & block.valid(capped),
        )

    def report(
        self, code: str, mask: np.ndarray, field: str | None = None, **details: object
    ) -> Hits:
        """found_where on this block: the lines where `mask` holds break rule `code`."""
        block = self.block
        return found_where(code, mask, block.line, record=block.record, field=field, **details)


def check_b02(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    """The per-employee rules on B02, one function per rule code."""
    b02 = parsed.block("B02")
    staff = Employees.of(b02, np.ones(len(b02), dtype=bool))
    rank = situation_ranks(b02)
    return [
        check_days(staff),
        check_situation_known(staff, rank),
        check_insured_number(staff, staff.regular),
        check_insured_key(staff),
        *check_ceiling(staff, staff.readable, ceiling),
        *check_idle_situations(staff, rank),
        *check_mp_without_activity(staff, rank),
        check_pay_when_working(staff, rank),
        check_af_reversed(staff, rank),
        check_control_sum_b02(staff, rank),
    ]


def check_b04(parsed: ParsedFile, ceiling: int | None) -> list[Hits]:
    """The per-entrant rules on B04, one function per rule code; the empty B04 is no entrant."""
    b04 = parsed.block("B04")
    empty = empty_entrants(parsed)
    new = Employees.of(b04, ~empty)
    occasional = new.known & (new.number == OCCASIONAL)
    unregistered = new.known & (new.number == NO_NUMBER_YET)
    return [
        *check_empty_b04_alone(new, empty),
        check_entrant_number_readable(new),
        check_insured_number(new, new.regular | occasional | unregistered),
        check_entrant_cin(new, unregistered),
        check_entrant_name(new, occasional),
        check_days(new),
        check_insured_key(new),
        *check_ceiling(new, new.readable & ~occasional, ceiling),
        check_occasional_ceiling(new, occasional),
        check_control_sum_b04(new),
    ]


def check_days(staff: Employees) -> Hits:
    """JOURS_HORS_LIMITES: no more declared days than a month allows (edi_format.md §11)."""
    days = PAY_FIELDS[staff.block.record][0]
    return staff.report("JOURS_HORS_LIMITES", staff.judged & (staff.days > limits().max_days), days)


def check_insured_number(staff: Employees, allowed: np.ndarray) -> Hits:
    """ASSURE_INVALIDE: a readable insured number that no rule allows on this record."""
    return staff.report("ASSURE_INVALIDE", staff.judged & staff.known & ~allowed, "N_Num_Assure")


def check_insured_key(staff: Employees) -> Hits:
    """CLE_ASSURE (warning): the check key of a registered number (edi_format.md §13)."""
    digits = staff.block.raw("N_Num_Assure") - np.uint8(ZERO)
    key = insured_key_from_digits(digits)
    wrong = staff.regular & (key != digits[:, 8])
    return staff.report("CLE_ASSURE", wrong, "N_Num_Assure", expected=key)


def check_ceiling(staff: Employees, mask: np.ndarray, ceiling: int | None) -> list[Hits]:
    """PLAFOND: capped salary = min(real, ceiling of the period)."""
    if ceiling is None:  # no ceiling in force: reported as PERIODE_HORS_BAREME
        return []
    capped_field = PAY_FIELDS[staff.block.record][2]
    expected = np.minimum(staff.real, ceiling)
    return [
        staff.report("PLAFOND", mask & (staff.capped != expected), capped_field, expected=expected)
    ]


def check_situation_known(staff: Employees, rank: np.ndarray) -> Hits:
    """SITUATION_INCONNUE: the code is one of situations.csv (or blank)."""
    return staff.report("SITUATION_INCONNUE", rank < 0, "L_Situation")


def _active(staff: Employees) -> np.ndarray:
    return (staff.days != 0) | (staff.real != 0) | (staff.capped != 0)


def _without_activity(staff: Employees, rank: np.ndarray, strength: str, code: str) -> list[Hits]:
    """Lines whose situation (situations.csv says `strength`) declares days or salary."""
    active = _active(staff)
    return [
        staff.report(code, (rank == situation.rank) & active, "L_Situation", value=situation.code)
        for situation in situations().values()
        if situation.zero_days_and_salary == strength
    ]


def check_idle_situations(staff: Employees, rank: np.ndarray) -> list[Hits]:
    """SITUATION_SANS_ACTIVITE (warning): SO/CS/MS declare no days or pay, by practice."""
    return _without_activity(staff, rank, "warning", "SITUATION_SANS_ACTIVITE")


def check_mp_without_activity(staff: Employees, rank: np.ndarray) -> list[Hits]:
    """SITUATION_MP_NON_NULS: MP declares no days or pay (cahier IV-2.3)."""
    return _without_activity(staff, rank, "blocking", "SITUATION_MP_NON_NULS")


def check_pay_when_working(staff: Employees, rank: np.ndarray) -> Hits:
    """SALAIRE_NUL_EN_ACTIVITE (warning): days at work but no salary."""
    unpaid = (rank == 0) & (staff.days > 0) & (staff.real == 0)
    return staff.report(
        "SALAIRE_NUL_EN_ACTIVITE", unpaid & staff.block.valid("N_Salaire_Reel"), "N_Salaire_Reel"
    )


def check_af_reversed(staff: Employees, rank: np.ndarray) -> Hits:
    """AF_A_REVERSER: a sortant or décédé pays the AF paid in advance back (cahier IV-3, IV-4)."""
    b02 = staff.block
    leaving = np.isin(rank, [s.rank for s in situations().values() if s.af_reversed])
    reverse, net = b02.number("N_AF_A_Reverser"), b02.number("N_AF_Net_A_Payer")
    both = b02.valid("N_AF_A_Reverser") & b02.valid("N_AF_Net_A_Payer")
    return staff.report(
        "AF_A_REVERSER", leaving & both & (reverse != net), "N_AF_A_Reverser", expected=net
    )


def check_control_sum_b02(staff: Employees, rank: np.ndarray) -> Hits:
    """SOMME_CONTROLE on B02: number + AF reversed + days + salaries + situation rank (§8)."""
    b02 = staff.block
    terms = ("N_Num_Assure", "N_AF_A_Reverser", *PAY_FIELDS["B02"])
    computable = np.logical_and.reduce([b02.valid(t) for t in terms]) & (rank >= 0)
    reverse = b02.number("N_AF_A_Reverser")
    expected = staff.number + reverse + staff.days + staff.real + staff.capped + rank
    return _control_sum(staff, computable, expected)


def check_control_sum_b04(staff: Employees) -> Hits:
    """SOMME_CONTROLE on B04: number + days + salaries (§8)."""
    readable = [staff.block.valid(t) for t in PAY_FIELDS["B04"]]
    computable = staff.judged & staff.known & np.logical_and.reduce(readable)
    return _control_sum(staff, computable, staff.number + staff.days + staff.real + staff.capped)


def _control_sum(staff: Employees, computable: np.ndarray, expected: np.ndarray) -> Hits:
    """S_Ctr recomputed; lines with an unreadable term are already reported elsewhere."""
    block = staff.block
    wrong = computable & block.valid("S_Ctr") & (block.number("S_Ctr") != expected)
    return staff.report("SOMME_CONTROLE", wrong, "S_Ctr", expected=expected)


def check_empty_b04_alone(staff: Employees, empty: np.ndarray) -> list[Hits]:
    """B04_VIDE_MAL_PLACE: the empty B04 stands alone or not at all (edi_format.md §6)."""
    if len(staff.block) <= 1:
        return []
    return [staff.report("B04_VIDE_MAL_PLACE", empty)]


def check_entrant_number_readable(staff: Employees) -> Hits:
    """CHAMP_NON_NUMERIQUE on an entrant's number (blank only in the empty B04)."""
    return staff.report("CHAMP_NON_NUMERIQUE", staff.judged & ~staff.known, "N_Num_Assure")


def check_entrant_cin(staff: Employees, unregistered: np.ndarray) -> Hits:
    """ENTRANT_SANS_CIN: an entrant without a number yet (000000000) gives a CIN."""
    missing = unregistered & staff.block.blank("L_Num_CIN")
    return staff.report("ENTRANT_SANS_CIN", missing, "L_Num_CIN")


def check_entrant_name(staff: Employees, occasional: np.ndarray) -> Hits:
    """ENTRANT_SANS_NOM: every entrant but occasional labour is named."""
    nameless = staff.judged & ~occasional & staff.block.blank("L_Nom_Prenom")
    return staff.report("ENTRANT_SANS_NOM", nameless, "L_Nom_Prenom")


def check_occasional_ceiling(staff: Employees, occasional: np.ndarray) -> Hits:
    """PLAFOND_OCCASIONNEL: occasional labour is capped by its real salary only (cahier IV-3)."""
    over = staff.readable & occasional & (staff.capped > staff.real)
    return staff.report("PLAFOND_OCCASIONNEL", over, "N_Sal_Plaf", expected=staff.real)


def check_duplicates(parsed: ParsedFile) -> list[Hits]:
    """An insured number declared twice, across B02 and the entrants (B04)."""
    blocks = [parsed.block("B02"), parsed.block("B04")]
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    for index, block in enumerate(blocks):
        keep = regular_number(block.number("N_Num_Assure"), block.valid("N_Num_Assure"))
        parts[0].append(block.number("N_Num_Assure")[keep])
        parts[1].append(block.line[keep])
        parts[2].append(np.full(keep.sum(), index))
    numbers, lines, origin = (np.concatenate(part) for part in parts)
    order = np.lexsort((lines, numbers))  # by number, then line: equal numbers side by side
    numbers, lines, origin = numbers[order], lines[order], origin[order]
    repeated = np.concatenate(([False], numbers[1:] == numbers[:-1]))
    # Each group of equal numbers starts where `repeated` is false; carrying the latest start
    # forward (a running maximum of start indexes) gives every line its group's first index.
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
