"""A declaration against its préétabli: the employees CNSS expected, with their AF amounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.parse import Block, ParsedFile
from validators.anomaly import Hits, file_level, found, found_where
from validators.structure import header

AF_FIELDS = ("N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer")
ROSTER_COLUMNS = ("N_Num_Assure", "N_Enfants", *AF_FIELDS)


@dataclass(frozen=True)
class Roster:
    """What a préétabli says: who CNSS expects, with their AF amounts (A02 columns)."""

    affiliate: int | None
    period: str | None
    transfer_id: int | None
    employees: dict[str, np.ndarray]  # ROSTER_COLUMNS, int64 numpy columns

    @classmethod
    def from_parsed(cls, preetabli: ParsedFile) -> Roster:
        affiliate, period = header(preetabli, "preetabli")
        a00, a02 = preetabli.block("A00"), preetabli.block("A02")
        transfer = None
        if len(a00) and a00.valid("N_Identif_Transfert")[0]:
            transfer = int(a00.number("N_Identif_Transfert")[0])
        readable = a02.valid("N_Num_Assure")  # an unreadable number is nobody's
        employees = {name: a02.number(name)[readable] for name in ROSTER_COLUMNS}
        return cls(affiliate, period, transfer, employees)


def check_against_preetabli(declaration: ParsedFile, roster: Roster) -> list[Hits]:
    """Every préétabli employee declared once in B02, nobody else there, AF copied faithfully."""
    declared = header(declaration, "declaration")
    if declared != (roster.affiliate, roster.period):
        return [check_same_employer(declared, roster)]
    b02, b04 = declaration.block("B02"), declaration.block("B04")
    match = RosterMatch.of(b02, roster)
    return [
        *check_transfer_id(declaration.block("B00"), roster),
        check_outside_roster(b02, match),
        check_entrant_in_roster(b04, match),
        check_roster_declared(match),
        *check_af_copied(b02, match),
        check_af_reversed_within_net(b02, match),
        check_children(b02, match),
    ]


@dataclass(frozen=True)
class RosterMatch:
    """The B02 lines matched to the roster, by insured number (binary search, no hashing)."""

    numbers: np.ndarray  # the roster's insured numbers, sorted
    known: np.ndarray  # per B02 line: readable and in the roster
    position: np.ndarray  # per known line: its index in `numbers` (the first of equals)
    line: np.ndarray  # line numbers of the known lines
    expected: dict[str, np.ndarray]  # per roster column: the roster's value for each known line

    @classmethod
    def of(cls, b02: Block, roster: Roster) -> RosterMatch:
        roster_numbers = np.asarray(roster.employees["N_Num_Assure"], np.int64)
        by_number = np.argsort(roster_numbers, kind="stable")
        numbers = roster_numbers[by_number]
        declared, readable = b02.number("N_Num_Assure"), b02.valid("N_Num_Assure")
        known = readable & _member(declared, numbers)
        position = np.searchsorted(numbers, declared[known])
        at = by_number[position]  # préétabli row of each declared line
        expected = {  # read once per column
            name: np.asarray(roster.employees[name], np.int64)[at] for name in ROSTER_COLUMNS[1:]
        }
        return cls(numbers, known, position, b02.line[known], expected)


def check_same_employer(declared: tuple[int | None, str | None], roster: Roster) -> Hits:
    """PREETABLI_AUTRE: the préétabli given is for another affiliate or period."""
    return file_level(
        "PREETABLI_AUTRE", value=_who(*declared), expected=_who(roster.affiliate, roster.period)
    )


def check_transfer_id(b00: Block, roster: Roster) -> list[Hits]:
    """PREETABLI_TRANSFERT: B00 copies the préétabli's N_Identif_Transfert."""
    if roster.transfer_id is None:
        return []
    wrong = b00.valid("N_Identif_Transfert") & (
        b00.number("N_Identif_Transfert") != roster.transfer_id
    )
    return [
        found_where(
            "PREETABLI_TRANSFERT",
            wrong,
            b00.line,
            record="B00",
            field="N_Identif_Transfert",
            expected=roster.transfer_id,
        )
    ]


def check_outside_roster(b02: Block, match: RosterMatch) -> Hits:
    """HORS_PREETABLI: a B02 employee the préétabli does not list (an entrant goes in B04)."""
    outside = b02.valid("N_Num_Assure") & ~match.known
    return found_where("HORS_PREETABLI", outside, b02.line, record="B02", field="N_Num_Assure")


def check_entrant_in_roster(b04: Block, match: RosterMatch) -> Hits:
    """ENTRANT_DANS_PREETABLI: an entrant the préétabli already lists (it goes in B02)."""
    listed = b04.valid("N_Num_Assure") & _member(b04.number("N_Num_Assure"), match.numbers)
    return found_where(
        "ENTRANT_DANS_PREETABLI", listed, b04.line, record="B04", field="N_Num_Assure"
    )


def check_roster_declared(match: RosterMatch) -> Hits:
    """PREETABLI_NON_DECLARE: a préétabli employee with no B02 line (reported once per number)."""
    declared = np.zeros(len(match.numbers), dtype=bool)
    declared[match.position] = True
    first_of_its_number = np.concatenate(([True], match.numbers[1:] != match.numbers[:-1]))
    missing = match.numbers[first_of_its_number & ~declared]
    return found(
        "PREETABLI_NON_DECLARE",
        np.zeros(len(missing)),
        record="A02",
        value=np.array([f"{n:09d}" for n in missing]),
    )


def check_af_copied(b02: Block, match: RosterMatch) -> list[Hits]:
    """PREETABLI_AF_DIFFERENTE: the three AF amounts are the préétabli's, as given."""
    out = []
    for name in AF_FIELDS:
        # An unreadable field (read as 0) is CHAMP_NON_NUMERIQUE already, not a difference.
        known = match.known
        wrong = b02.valid(name)[known] & (b02.number(name)[known] != match.expected[name])
        out.append(
            found_where(
                "PREETABLI_AF_DIFFERENTE",
                wrong,
                match.line,
                record="B02",
                field=name,
                expected=match.expected[name],
            )
        )
    return out


def check_af_reversed_within_net(b02: Block, match: RosterMatch) -> Hits:
    """AF_REVERSER_SUPERIEUR: no more AF comes back than the préétabli's net AF."""
    net = match.expected["N_AF_Net_A_Payer"]
    over = b02.number("N_AF_A_Reverser")[match.known] > net
    return found_where(
        "AF_REVERSER_SUPERIEUR",
        over,
        match.line,
        record="B02",
        field="N_AF_A_Reverser",
        expected=net,
    )


def check_children(b02: Block, match: RosterMatch) -> Hits:
    """ENFANTS_DIFFERENT (warning): payroll may recount children (edi_format.md §7)."""
    known, roster_children = match.known, match.expected["N_Enfants"]
    differs = b02.valid("N_Enfants")[known] & (b02.number("N_Enfants")[known] != roster_children)
    return found_where(
        "ENFANTS_DIFFERENT",
        differs,
        match.line,
        record="B02",
        field="N_Enfants",
        expected=roster_children,
    )


def _member(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Per value: is it in `sorted_values`? (binary search: no hashing, no second sort)"""
    if sorted_values.size == 0:
        return np.zeros(values.shape, dtype=bool)
    # Where each value would be inserted; it is present when the value found there is itself.
    at = np.searchsorted(sorted_values, values).clip(max=sorted_values.size - 1)
    return sorted_values[at] == values


def _who(affiliate: int | None, period: str | None) -> str:
    return f"l'affilié {affiliate or '?'} pour la période {period or '?'}"
