"""Per-employee rules on B02 (préétabli employees) and B04 (entrants) lines, vectorised."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas import data_fields, situations
from transforms.keys import insured_key, insured_key_ok
from transforms.parse import ParsedFile
from validators.anomaly import found
from validators.structure import ORDER, blank_field

MAX_DAYS = 26
OCCASIONAL = 999_999_999  # main-d'œuvre occasionnelle, B04 only
NO_NUMBER_YET = 0  # entrant not yet registered: the CIN is then required
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[*range(ord("A"), ord("Z") + 1), *range(ord("0"), ord("9") + 1), ord(" ")]] = True


def regular_number(number: pd.Series) -> pd.Series:
    """9 digits starting with 1; 100000000 is refused by the portal (DMC)."""
    return number.between(100_000_001, 199_999_999).fillna(False)


def empty_entrant_rows(parsed: ParsedFile) -> pd.Series:
    """B04 lines that are the 'empty B04' written when there is no entrant (edi_format §6)."""
    b04 = parsed.frame("B04")
    amounts = b04[["N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf", "S_Ctr"]]
    blank = pd.Series(blank_field(parsed, "B04", "N_Num_Assure"), index=b04.index)
    return blank & b04["L_Nom_Prenom"].eq("") & b04["L_Num_CIN"].eq("") & amounts.eq(0).all(axis=1)


def check_characters(parsed: ParsedFile, kind: str) -> list[pd.DataFrame]:
    """AN fields use A-Z, 0-9 and space: an error for entrants' names and CIN, else a warning."""
    out = []
    for record in ORDER[kind]:
        rows = parsed.tables[record].column("line").to_numpy()
        for f in data_fields(record):
            if f.numeric or not rows.size:
                continue
            bad = ~_ALLOWED[parsed.lines.data[rows - 1, f.start : f.stop]].all(axis=1)
            strict = record == "B04" and f.name in ("L_Nom_Prenom", "L_Num_CIN")
            code = "CARACTERE_NON_ADMIS_ENTRANT" if strict else "CARACTERE_NON_ADMIS"
            out.append(found(code, rows[bad], record=record, field=f.name))
    return out


def check_b02(parsed: ParsedFile, ceiling: int | None) -> list[pd.DataFrame]:
    b02 = parsed.frame("B02")
    line, number = b02["line"], b02["N_Num_Assure"]
    days, real, capped = b02["N_Jours_Declares"], b02["N_Salaire_Reel"], b02["N_Salaire_Plaf"]
    codes = situations()
    situation = b02["L_Situation"]
    rank = situation.map({code: s.rank for code, s in codes.items()}).astype("Int64")
    out = [
        found(
            "JOURS_HORS_LIMITES",
            line[(days > MAX_DAYS).fillna(False)],
            record="B02",
            field="N_Jours_Declares",
        ),
        found("SITUATION_INCONNUE", line[rank.isna()], record="B02", field="L_Situation"),
        found(
            "ASSURE_INVALIDE",
            line[number.notna() & ~regular_number(number)],
            record="B02",
            field="N_Num_Assure",
        ),
    ]
    out += _key_warnings(b02, "B02", regular_number(number))
    if ceiling is not None:
        out.append(_ceiling(b02, "B02", real, capped, ceiling, occasional=None))
    inactive = (days != 0) | (real != 0) | (capped != 0)
    for code, s in codes.items():
        if s.zero_days_and_salary == "none":
            continue
        anomaly = (
            "SITUATION_MP_NON_NULS"
            if s.zero_days_and_salary == "blocking"
            else ("SITUATION_SANS_ACTIVITE")
        )
        hit = (situation == code) & inactive.fillna(False)
        out.append(found(anomaly, line[hit], record="B02", field="L_Situation", value=code))
    working = situation.eq("") & (days > 0).fillna(False) & real.eq(0).fillna(False)
    out.append(
        found("SALAIRE_NUL_EN_ACTIVITE", line[working], record="B02", field="N_Salaire_Reel")
    )
    leaving = situation.isin(["SO", "DE"])
    reverse, net = b02["N_AF_A_Reverser"], b02["N_AF_Net_A_Payer"]
    wrong = (leaving & (reverse != net)).fillna(False)
    out.append(
        found(
            "AF_A_REVERSER", line[wrong], record="B02", field="N_AF_A_Reverser", expected=net[wrong]
        )
    )
    expected = number + reverse + days + real + capped + rank
    out.append(_control_sum(b02, "B02", expected))
    return out


def check_b04(parsed: ParsedFile, ceiling: int | None) -> list[pd.DataFrame]:
    b04 = parsed.frame("B04")
    empty = empty_entrant_rows(parsed)
    blank_number = pd.Series(blank_field(parsed, "B04", "N_Num_Assure"), index=b04.index)
    out = []
    if len(b04) > 1:  # the empty B04 stands alone or not at all
        out.append(found("B04_VIDE_MAL_PLACE", b04["line"][empty], record="B04"))
    b04 = b04[~empty]
    blank_number = blank_number[~empty]
    line, number = b04["line"], b04["N_Num_Assure"]
    days, real, capped = b04["N_Nbr_Jours"], b04["N_Sal_Reel"], b04["N_Sal_Plaf"]
    occasional = number.eq(OCCASIONAL).fillna(False)
    unregistered = number.eq(NO_NUMBER_YET).fillna(False)
    regular = regular_number(number)
    out += [
        found(
            "CHAMP_NON_NUMERIQUE",
            line[number.isna() | blank_number],
            record="B04",
            field="N_Num_Assure",
        ),
        found(
            "ASSURE_INVALIDE",
            line[number.notna() & ~(regular | occasional | unregistered)],
            record="B04",
            field="N_Num_Assure",
        ),
        found(
            "ENTRANT_SANS_CIN",
            line[unregistered & b04["L_Num_CIN"].eq("")],
            record="B04",
            field="L_Num_CIN",
        ),
        found(
            "ENTRANT_SANS_NOM",
            line[~occasional & b04["L_Nom_Prenom"].eq("")],
            record="B04",
            field="L_Nom_Prenom",
        ),
        found(
            "JOURS_HORS_LIMITES",
            line[(days > MAX_DAYS).fillna(False)],
            record="B04",
            field="N_Nbr_Jours",
        ),
    ]
    out += _key_warnings(b04, "B04", regular)
    if ceiling is not None:
        out.append(_ceiling(b04, "B04", real, capped, ceiling, occasional=occasional))
    out.append(_control_sum(b04, "B04", number + days + real + capped))
    return out


def check_duplicates(parsed: ParsedFile) -> list[pd.DataFrame]:
    """An insured number declared twice, across B02 and the entrants (B04)."""
    b02, b04 = parsed.frame("B02"), parsed.frame("B04")
    both = pd.concat(
        [
            b02[["line", "N_Num_Assure"]].assign(record="B02"),
            b04[["line", "N_Num_Assure"]].assign(record="B04"),
        ],
        ignore_index=True,
    )
    both = both[regular_number(both["N_Num_Assure"])]
    first_line = both.groupby("N_Num_Assure")["line"].transform("min")
    repeated = both[both["line"] != first_line]
    return [
        found(
            "ASSURE_EN_DOUBLE",
            group["line"],
            record=record,
            field="N_Num_Assure",
            expected=first_line[group.index],
        )
        for record, group in repeated.groupby("record")
    ]


def _key_warnings(frame: pd.DataFrame, record: str, regular: pd.Series) -> list[pd.DataFrame]:
    numbers = frame["N_Num_Assure"][regular].to_numpy(dtype=np.int64)
    wrong = ~insured_key_ok(numbers)
    keys = insured_key(numbers[wrong] // 10)
    return [
        found(
            "CLE_ASSURE",
            frame["line"][regular][wrong],
            record=record,
            field="N_Num_Assure",
            expected=keys,
        )
    ]


def _ceiling(
    frame: pd.DataFrame,
    record: str,
    real: pd.Series,
    capped: pd.Series,
    ceiling: int,
    occasional: pd.Series | None,
) -> pd.DataFrame:
    """Capped = min(real, ceiling); occasional labour only needs capped <= real (IV-3)."""
    field_name = "N_Salaire_Plaf" if record == "B02" else "N_Sal_Plaf"
    expected = real.clip(upper=ceiling)
    wrong = (capped != expected).fillna(False)
    if occasional is None:
        return found(
            "PLAFOND",
            frame["line"][wrong],
            record=record,
            field=field_name,
            expected=expected[wrong],
        )
    over = (capped > real).fillna(False) & occasional
    return pd.concat(
        [
            found(
                "PLAFOND",
                frame["line"][wrong & ~occasional],
                record=record,
                field=field_name,
                expected=expected[wrong & ~occasional],
            ),
            found(
                "PLAFOND_OCCASIONNEL",
                frame["line"][over],
                record=record,
                field=field_name,
                expected=real[over],
            ),
        ],
        ignore_index=True,
    )


def _control_sum(frame: pd.DataFrame, record: str, expected: pd.Series) -> pd.DataFrame:
    """S_Ctr recomputed; lines with an unreadable term are already reported elsewhere."""
    wrong = (frame["S_Ctr"] != expected).fillna(False) & expected.notna()
    return found(
        "SOMME_CONTROLE",
        frame["line"][wrong],
        record=record,
        field="S_Ctr",
        expected=expected[wrong],
    )
