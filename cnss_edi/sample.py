"""Realistic sample préétabli (AFFEBDS_) and declaration (DS_) files for demos and load tests.

The files follow shared/spec/edi_format.md so that the validator accepts them without a single
anomaly: valid check keys, totals and control sums recomputed from the lines, situation rules.
Generation is vectorised: each employer's staff is a set of numpy arrays, and each record
block is a (rows, 260 + EOL) byte matrix filled field by field from schemas.record_layouts(),
so a million lines take seconds. One employer is held in memory at a time.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnss_edi.files import write_atomically
from cnss_edi.records import SPACE, digits, encode, text_table, totals_of
from schemas import (
    RECORD_LENGTH,
    Field,
    NoRuleInForce,
    allowance_per_child,
    ceiling_for,
    field,
    limits,
    record_layouts,
    situations,
    totals,
)
from transforms.keys import affiliate_key, insured_key
from transforms.parse import parse

MAX_DAYS = limits().max_days  # per person and month (§11); the worst case for capacity (§12)
# Pay floors: 1,500 MAD for any paid line, and a full-month rate above the 2026 SMIG
# (3,422.72 MAD, cnss_rules.md) so that a "salary below SMIG" plausibility warning never fires.
LINE_FLOOR = 150_000
MONTH_FLOOR = 350_000
MONTH_CAP = 50_000_000  # 500,000 MAD: keeps freak log-normal draws out
ROSTER_NUMBERS = ("N_Num_Assure", "N_Enfants", "N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer")
CHILDREN_ODDS = (0.34, 0.20, 0.20, 0.14, 0.07, 0.03, 0.02)  # 0..6 children
# Mostly normal work. The codes that want 0 days and 0 pay (situations.csv) are declared so.
SITUATION_ODDS = {"": 0.955, "SO": 0.015, "IL": 0.01, "AT": 0.004, "IT": 0.004}
SITUATION_ODDS |= {"CS": 0.004, "MS": 0.004, "DE": 0.002, "MP": 0.002}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


# Word lists, comma-separated: upper-case A-Z and spaces only (the accepted set, §4).
SURNAMES = _words(
    "ALAOUI,BENNANI,BERRADA,CHRAIBI,EL AMRANI,EL IDRISSI,TAZI,FASSI FIHRI,BENJELLOUN,LAHLOU,"
    "OUAZZANI,KETTANI,EL ALAMI,BOUZIDI,HAJJI,ZIANI,NACIRI,MANSOURI,CHERKAOUI,SAIDI,BENKIRANE,"
    "HASSANI,RACHIDI,AIT OUFKIR,OUALI,SQALLI,BENCHEKROUN,EL OUARDI,MOUSSAOUI,AZIZI,TAHIRI,NEBHI"
)
GIVEN_NAMES = _words(
    "MOHAMED,AHMED,YOUSSEF,FATIMA ZAHRA,KHADIJA,AICHA,HASSAN,RACHID,SAID,NAIMA,SAADIA,KARIM,OMAR,"
    "ABDELLAH,MERYEM,SALMA,HAMZA,IMANE,SOUKAINA,ABDELKADER,MUSTAPHA,LAILA,NADIA,ZINEB,AMINE,ANAS,"
    "HOUDA,LATIFA,KHALID,ABDERRAHIM,BRAHIM,HAFSA"
)
CIN_PREFIXES = _words("A,B,BE,BH,BJ,BK,C,CD,D,EE,F,G,H,I,J,JA,K,L,M,N,P,Q,R,S,T,U,W,X,Y,Z")
COMPANY_WORDS = _words("ATLAS,MAGHREB,ANFA,OASIS,ARGANE,ZELLIGE,MEDINA,SOUSS,TOUBKAL,SEBOU,NOUR")
ACTIVITIES = _words(
    "COMMERCE DE GROS,INDUSTRIE TEXTILE,BATIMENT ET TRAVAUX PUBLICS,TRANSPORT ROUTIER,"
    "SERVICES INFORMATIQUES,AGRO ALIMENTAIRE,HOTELLERIE ET RESTAURATION,CENTRE D APPELS"
)
STREETS = _words(
    "BD MOHAMMED V,AVENUE HASSAN II,RUE IBN BATOUTA,BD ZERKTOUNI,AVENUE DES FAR,"
    "RUE AL MOUTANABBI,BD ABDELMOUMEN,QUARTIER INDUSTRIEL"
)
CITIES = _words(  # city and postal code
    "CASABLANCA 20000,RABAT 10000,FES 30000,MARRAKECH 40000,TANGER 90000,AGADIR 80000,"
    "MEKNES 50000,OUJDA 60000"
)


class SampleTooLarge(ValueError):
    """The requested staff would overflow a 6-digit total of the declaration (§12)."""


def _capacity() -> int:
    """Most B02 + B04 lines one declaration carries if everyone works MAX_DAYS days."""
    totals = ("B03", "B05", "B06")
    days = min(10 ** field(r, "N_T_Jours_Declares").length - 1 for r in totals)
    count = min(10 ** field(r, "N_Nbr_Salaries").length - 1 for r in totals)
    return min(days // MAX_DAYS, count)


def _default_entrants(employees: int) -> int:
    # About 2 % of the staff join each month; at least one so the B04 block is exercised;
    # fewer near the capacity, so that any staff that fits can be asked for.
    usual = max(1, employees // 50) if employees >= 10 else 0
    return min(usual, max(_capacity() - employees, 0))


def max_employees(entrants: int | None = None) -> int:
    """Largest `employees` accepted by write_samples with this `entrants` (None: the default)."""
    return max(_capacity() - (entrants or 0), 0)


def _check_size(employees: int, entrants: int | None) -> int:
    """The entrant count; refuses, before any work, what 26 days each would overflow."""
    m = _default_entrants(employees) if entrants is None else entrants
    if employees < 1 or m < 0:
        raise ValueError("Il faut au moins 1 salarié. / employees must be >= 1, entrants >= 0.")
    if employees + m > _capacity():
        most = max_employees(entrants)
        raise SampleTooLarge(
            f"{employees} salariés et {m} entrants à {MAX_DAYS} jours feraient déborder les "
            f"totaux à 6 chiffres de la déclaration (B03, B05, B06) : {most} salariés au plus "
            f"par employeur ; répartissez-les sur plusieurs employeurs. / {employees} employees "
            f"and {m} entrants at {MAX_DAYS} days would overflow the 6-digit totals of the "
            f"declaration: at most {most} employees per employer."
        )
    return m


def _check_args(affiliate: int, period: str, employers: int, line_ending: bytes) -> None:
    """Every argument is judged before anything is generated or written."""
    # A wrong check key is not refused: the public key algorithm is known to fail on some
    # real numbers, so validation only warns about it (CLE_AFFILIE), and so does the CLI.
    if not 1_000_000 <= affiliate <= 9_999_999:
        raise ValueError(
            f"N° d'affilié {affiliate} invalide : 7 chiffres attendus. / Invalid affiliate "
            "number: 7 digits are required."
        )
    if employers < 1 or affiliate // 10 + employers > 10**6:
        raise ValueError(
            f"Nombre d'employeurs invalide : {employers}. / Invalid number of employers."
        )
    if not isinstance(period, str) or not re.fullmatch(r"\d{4}(0[1-9]|1[0-2])", period):
        raise ValueError(f"Période « {period} » invalide : format AAAAMM. / Period must be YYYYMM.")
    try:
        ceiling_for(period)
    except NoRuleInForce as exc:
        raise ValueError(f"Aucun plafond connu pour la période {period}. / No ceiling.") from exc
    if line_ending not in (b"\n", b"\r\n"):
        raise ValueError("line_ending must be b'\\n' or b'\\r\\n'")


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    half = field("A02", "L_Nom_Prenom").length // 2  # surname 30 + given name 30 (§5)
    surnames = text_table(SURNAMES, half)[rng.integers(0, len(SURNAMES), n)]
    return np.hstack(
        [surnames, text_table(GIVEN_NAMES, half)[rng.integers(0, len(GIVEN_NAMES), n)]]
    )


def _cins(rng: np.random.Generator, n: int) -> np.ndarray:
    """CINs like AB123456 or K98765: one or two letters, then five or six digits."""
    out = np.full((n, field("B04", "L_Num_CIN").length), SPACE, dtype=np.uint8)
    out[:, :2] = text_table(CIN_PREFIXES, 2)[rng.integers(0, len(CIN_PREFIXES), n)]
    numbers = digits(rng.integers(0, 10**6, n), 6)
    one = out[:, 1] == SPACE
    out[~one, 2:8], out[one, 1:7] = numbers[~one], numbers[one]
    out[one & (rng.random(n) < 0.5), 6] = SPACE
    return out


def _pay(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """Salary in centimes: a full-month rate (shifted log-normal, median ~5,000 MAD, about a
    third above 6,000 MAD) prorated to the days worked; 0 when no day is declared."""
    month = MONTH_FLOOR + rng.lognormal(np.log(500_000 - MONTH_FLOOR), 1.0, days.size)
    month = np.minimum(np.rint(month).astype(np.int64), MONTH_CAP)
    return np.where(days > 0, np.maximum(month * days // MAX_DAYS, LINE_FLOOR), 0)


def _staff(
    rng: np.random.Generator, numbers: np.ndarray, period: str, ceiling: int
) -> dict[str, Any]:
    """A02/B02 values for the préétabli staff (insured numbers already sorted)."""
    k = numbers.size
    children = rng.choice(len(CHILDREN_ODDS), size=k, p=CHILDREN_ODDS)
    allowance = np.concatenate([[0], np.cumsum(allowance_per_child(period))])
    payer = allowance[np.minimum(children, len(allowance) - 1)]
    # A deduction (allowance overpaid earlier) is rare and never exceeds what is due.
    deduct = np.where(rng.random(k) < 0.01, np.minimum(payer, allowance[1]), 0)
    roster = {
        "N_Num_Assure": numbers,
        "N_Enfants": children,
        "N_AF_A_Payer": payer,
        "N_AF_A_Deduire": deduct,
        "N_AF_Net_A_Payer": payer - deduct,
    }
    return {**_worked(rng, roster, ceiling), "L_Nom_Prenom": _names(rng, k)}


def _worked(rng: np.random.Generator, roster: dict[str, Any], ceiling: int) -> dict[str, Any]:
    """The B02 values of a roster (its A02 values): situations, days and pay drawn, the
    allowance of leavers paid back, control sums."""
    numbers = roster["N_Num_Assure"]
    k = numbers.size
    codes = list(SITUATION_ODDS)
    situation = rng.choice(len(codes), size=k, p=list(SITUATION_ODDS.values()))
    ranks = np.array([situations()[c].rank for c in codes])[situation]
    idle = np.array([situations()[c].zero_days_and_salary != "none" for c in codes])[situation]
    partial = (situation > 0) | (rng.random(k) < 0.12)  # absences, mid-month moves
    days = np.where(idle, 0, np.where(partial, rng.integers(1, MAX_DAYS, k), MAX_DAYS))
    real = _pay(rng, days)
    capped = np.minimum(real, ceiling)
    leaving = np.array([situations()[c].af_reversed for c in codes])[situation]
    reverse = np.where(leaving, roster["N_AF_Net_A_Payer"], 0)  # SO/DE pay it back (§9)
    return {
        **roster,
        "N_AF_A_Reverser": reverse,
        "N_Jours_Declares": days,
        "N_Salaire_Reel": real,
        "N_Salaire_Plaf": capped,
        "L_Situation": text_table(codes, 2)[situation],
        "S_Ctr": numbers + reverse + days + real + capped + ranks,
    }


def _entrants(rng: np.random.Generator, numbers: np.ndarray, ceiling: int) -> dict[str, Any]:
    """B04 values; with no entrant, the one empty B04 of §6 (blank number, zeros)."""
    m = numbers.size
    if m == 0:
        blank = {"N_Num_Assure": None, "L_Nom_Prenom": "", "L_Num_CIN": ""}
        return blank | dict.fromkeys(("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf", "S_Ctr"), 0)
    # Entrants mostly join during the month, so most declare part of it.
    days = np.where(rng.random(m) < 0.6, rng.integers(1, MAX_DAYS, m), MAX_DAYS)
    real = _pay(rng, days)
    capped = np.minimum(real, ceiling)
    return {
        "N_Num_Assure": numbers,
        "L_Nom_Prenom": _names(rng, m),
        "L_Num_CIN": _cins(rng, m),
        "N_Nbr_Jours": days,
        "N_Sal_Reel": real,
        "N_Sal_Plaf": capped,
        "S_Ctr": numbers + days + real + capped,
    }


def _header(rng: np.random.Generator, period: str) -> dict[str, Any]:
    """A01/B01 text: company, activity, address, dates (issued on the 26th, due the 10th)."""
    year, month = int(period[:4]), int(period[4:])
    city, postal = CITIES[rng.integers(len(CITIES))].split()
    due = dt.date(year + month // 12, month % 12 + 1, 10)
    return {
        "L_Raison_Sociale": f"SOCIETE {COMPANY_WORDS[rng.integers(len(COMPANY_WORDS))]} SARL",
        "L_Activite": ACTIVITIES[rng.integers(len(ACTIVITIES))],
        "L_Adresse": f"{rng.integers(1, 300)} {STREETS[rng.integers(len(STREETS))]}",
        "L_Ville": city,
        "C_Code_Postal": postal,
        "C_Code_Agence": f"{rng.integers(10, 100)}",
        "D_Date_Emission": int(f"{period}26"),
        "D_Date_Exig": int(due.strftime("%Y%m%d")),
    }


def _employer(
    rng: np.random.Generator, affiliate: int, period: str, k: int, m: int, eol: bytes
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The préétabli and declaration record blocks of one employer."""
    ceiling = ceiling_for(period)
    numbers = _insured_numbers(rng, k + m)
    head = {"N_Num_Affilie": affiliate, "L_Periode": int(period)}
    staff = {**head, **_staff(rng, np.sort(numbers[:k]), period, ceiling)}
    new = {**head, **_entrants(rng, np.sort(numbers[k:]), ceiling)}
    top = {**head, **_header(rng, period)}
    transfer = int(f"{affiliate:07d}{period[2:]}{rng.integers(1, 1000):03d}")
    preetabli = [
        encode("A00", 1, {"N_Identif_Transfert": transfer, "L_Cat": "A0"}, eol),
        encode("A01", 1, top, eol),
        encode("A02", k, staff, eol),
        encode("A03", 1, {**head, **totals_of("A03", staff, k)}, eol),
    ]
    return preetabli, _declaration(transfer, top, staff, new, eol)


def _insured_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct valid insured numbers: 8-digit prefixes 10000001..19999999 (100000000 is
    refused by the portal, §13) and their keys."""
    prefixes = rng.choice(9_999_999, size=n, replace=False) + 10_000_001
    return prefixes * 10 + insured_key(prefixes)


def _declaration(
    transfer: int, top: dict[str, Any], staff: dict[str, Any], new: dict[str, Any], eol: bytes
) -> list[np.ndarray]:
    """B00…B06 of a declaration: its header, staff (B02) and entrants (B04), with totals."""
    head = {"N_Num_Affilie": top["N_Num_Affilie"], "L_Periode": top["L_Periode"]}
    k = staff["N_Num_Assure"].size
    m = 0 if new["N_Num_Assure"] is None else new["N_Num_Assure"].size
    sums = {"B03": totals_of("B03", staff, k), "B05": totals_of("B05", new, m)}
    b06 = {}
    for total in totals("B06"):
        assert total.summed is not None  # B06 adds up fields of B03 and B05, not lines
        b06[total.field] = sum(sums[record][total.summed] for record in total.over)
    return [
        encode("B00", 1, {"N_Identif_Transfert": transfer, "L_Cat": "B0"}, eol),
        encode("B01", 1, top, eol),
        encode("B02", k, staff, eol),
        encode("B03", 1, {**head, **sums["B03"]}, eol),
        encode("B04", max(m, 1), new, eol),
        encode("B05", 1, {**head, **sums["B05"]}, eol),
        encode("B06", 1, {**head, **b06}, eol),
    ]


def declaration_from_preetabli(preetabli: bytes, *, entrants: int = 0, seed: int = 0) -> bytes:
    """A valid declaration answering a préétabli: every employee of its A02 lines (names,
    children and allowances copied), days and pay drawn, and `entrants` new employees.
    Line endings follow the préétabli's."""
    parsed = parse(preetabli)
    a00, a01, a02 = parsed.block("A00"), parsed.block("A01"), parsed.block("A02")
    rng = np.random.default_rng(seed)
    period = f"{int(a01.number('L_Periode')[0]):06d}"
    ceiling = ceiling_for(period)
    top: dict[str, Any] = {
        f.name: int(a01.number(f.name)[0]) if f.numeric else a01.raw(f.name)[:1]
        for f in record_layouts()["A01"]
        if f.name not in ("L_filler", "L_Type_Enreg")
    }
    roster = {name: a02.number(name) for name in ROSTER_NUMBERS}
    roster["L_Nom_Prenom"] = a02.raw("L_Nom_Prenom")
    head = {"N_Num_Affilie": top["N_Num_Affilie"], "L_Periode": top["L_Periode"]}
    staff = {**head, **_worked(rng, roster, ceiling)}
    taken = set(roster["N_Num_Assure"].tolist())
    fresh = np.array([n for n in _insured_numbers(rng, entrants + 64) if n not in taken])
    new = {**head, **_entrants(rng, np.sort(fresh[:entrants]), ceiling)}
    transfer = int(a00.number("N_Identif_Transfert")[0])
    eol = b"\r\n" if b"\r\n" in preetabli[: RECORD_LENGTH + 2] else b"\n"
    blocks = _declaration(transfer, top, staff, new, eol)
    return b"".join(np.ascontiguousarray(block).tobytes() for block in blocks)


def write_samples(
    out_dir: Path,
    *,
    affiliate: int,
    period: str,
    employees: int,
    employers: int = 1,
    entrants: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    line_ending: bytes = b"\n",
) -> list[Path]:
    """Write an AFFEBDS_/DS_ pair per employer into out_dir; return the paths written.

    Employer i > 0 gets the i-th affiliate number after `affiliate` (each prefix has exactly
    one valid key). Employer i's files depend only on (seed, i), not on `employers`.
    """
    affiliate, employees, employers = map(operator.index, (affiliate, employees, employers))
    m = _check_size(employees, None if entrants is None else operator.index(entrants))
    _check_args(affiliate, period, employers, line_ending)
    prefixes = affiliate // 10 + np.arange(employers)
    affiliates = prefixes * 10 + affiliate_key(prefixes)  # the others: valid keys
    affiliates[0] = affiliate
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, number in enumerate(affiliates.tolist()):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        files = _employer(rng, number, period, employees, m, line_ending)
        for prefix, blocks in zip(("AFFEBDS", "DS"), files, strict=True):
            path = out_dir / f"{prefix}_{number:07d}_{period}.txt"
            write_atomically(path, (np.ascontiguousarray(block).data for block in blocks))
            written.append(path)
        if progress is not None:
            progress((i + 1) * employees, employers * employees)
    return written


def write_flawed_copy(declaration: Path) -> Path:
    """Beside a valid declaration, a copy with two mistakes a payroll export really makes:
    an entrant's name in lower case (refused for entrants, cahier IV-2.5) and an unknown
    situation code. Neither touches a total, so the acknowledgement lists exactly those two.
    Written as <name>_ERREURS.txt, for demonstrations and for testing a pipeline end to end."""
    lines = declaration.read_bytes().split(b"\n")
    b02 = next(i for i, line in enumerate(lines) if line.startswith(b"B02"))
    number = field("B04", "N_Num_Assure")
    entrant = next(
        (
            i
            for i, line in enumerate(lines)
            if line.startswith(b"B04") and line[number.start : number.stop].strip()
        ),
        None,
    )
    _overwrite(lines, b02, field("B02", "L_Situation"), b"XX")
    if entrant is not None:
        name = field("B04", "L_Nom_Prenom")
        surname = lines[entrant][name.start : name.stop].rstrip()
        _overwrite(lines, entrant, name, surname.title())
    flawed = declaration.with_name(f"{declaration.stem}_ERREURS.txt")
    write_atomically(flawed, b"\n".join(lines))
    return flawed


def _overwrite(lines: list[bytes], index: int, where: Field, text: bytes) -> None:
    line = lines[index]
    padded = text.ljust(where.length)[: where.length]
    lines[index] = line[: where.start] + padded + line[where.stop :]
