"""validators.lines: per-employee rules on B02 and B04 lines, and the accepted character set.

Each mutation rewrites the control sums and totals by hand afterwards (tests/edi.py), so that
only the rule under test can fire.
"""

from __future__ import annotations

import pytest

from tests.edi import (
    CEILING,
    Case,
    check_case,
    declaration,
    get_int,
    insert_lines,
    line_numbers,
    recompute_totals,
    run,
    sample,
    set_fields,
    with_key,
)

DEC = declaration()
B02 = line_numbers(DEC, "B02")
B04 = line_numbers(DEC, "B04")
FIRST, SECOND = B02[0], B02[1]
NOT_IN_FILE = with_key(12_345_678, 9)  # 123456785: a valid key, nobody in the sample


def number_of(line: int, record: str = "B02") -> int:
    return get_int(DEC, line, record, "N_Num_Assure")


def b02(line: int, **values: int | str) -> bytes:
    """The sample with one B02 line rewritten, then S_Ctr and totals recomputed."""
    return recompute_totals(set_fields(DEC, line, "B02", values))


def b04(line: int, **values: int | str) -> bytes:
    return recompute_totals(set_fields(DEC, line, "B04", values))


def working(**values: int | str) -> dict[str, int | str]:
    """A normal full month below the ceiling, then the given changes."""
    base: dict[str, int | str] = {
        "L_Situation": "",
        "N_Jours_Declares": 26,
        "N_Salaire_Reel": 400_000,
        "N_Salaire_Plaf": 400_000,
        "N_AF_A_Reverser": 0,
    }
    return base | values


def make(raw: bytes):
    return lambda: (raw, {})


def blank_entrant_after_real_ones() -> bytes:
    _, empty = sample(entrants=0)
    blank = empty.splitlines()[line_numbers(empty, "B04")[0] - 1]
    return insert_lines(DEC, B04[-1] + 1, [blank])


CASES = [
    Case(
        "name-with-hyphen",
        "CARACTERE_NON_ADMIS",
        make(b02(FIRST, L_Nom_Prenom="EL-AMRANI")),
        FIRST,
        "B02",
        "L_Nom_Prenom",
    ),
    Case(
        "company-lower-case",
        "CARACTERE_NON_ADMIS",
        make(set_fields(DEC, 2, "B01", {"L_Raison_Sociale": "Societe Atlas"})),
        2,
        "B01",
        "L_Raison_Sociale",
    ),
    Case(
        "entrant-name-apostrophe",
        "CARACTERE_NON_ADMIS_ENTRANT",
        make(b04(B04[0], L_Nom_Prenom="O'NEIL")),
        B04[0],
        "B04",
        "L_Nom_Prenom",
    ),
    Case(
        "entrant-cin-hyphen",
        "CARACTERE_NON_ADMIS_ENTRANT",
        make(b04(B04[1], L_Num_CIN="AB-12345")),
        B04[1],
        "B04",
        "L_Num_CIN",
    ),
    Case(
        "b02-key",
        "CLE_ASSURE",
        make(b02(SECOND, N_Num_Assure=NOT_IN_FILE + 1)),
        SECOND,
        "B02",
        "N_Num_Assure",
        value=str(NOT_IN_FILE + 1),
    ),
    Case(
        "b04-key",
        "CLE_ASSURE",
        make(b04(B04[0], N_Num_Assure=NOT_IN_FILE - 1)),
        B04[0],
        "B04",
        "N_Num_Assure",
        value=str(NOT_IN_FILE - 1),
    ),
    Case(
        "b02-100000000",
        "ASSURE_INVALIDE",
        make(b02(FIRST, N_Num_Assure=100_000_000)),  # valid key, refused by the portal
        FIRST,
        "B02",
        "N_Num_Assure",
        value="100000000",
    ),
    Case(
        "b02-starts-with-2",
        "ASSURE_INVALIDE",
        make(b02(FIRST, N_Num_Assure=with_key(23_456_789, 9))),
        FIRST,
        "B02",
        "N_Num_Assure",
    ),
    Case(
        "b02-occasional-number",
        "ASSURE_INVALIDE",
        make(b02(FIRST, N_Num_Assure=999_999_999)),  # occasional labour is B04 only
        FIRST,
        "B02",
        "N_Num_Assure",
    ),
    Case(
        "b04-starts-with-2",
        "ASSURE_INVALIDE",
        make(b04(B04[0], N_Num_Assure=200_000_000)),
        B04[0],
        "B04",
        "N_Num_Assure",
    ),
    Case(
        "b02-twice",
        "ASSURE_EN_DOUBLE",
        make(b02(SECOND, N_Num_Assure=number_of(FIRST))),
        SECOND,
        "B02",
        "N_Num_Assure",
        value=str(number_of(FIRST)),
    ),
    Case(
        "entrant-already-in-b02",
        "ASSURE_EN_DOUBLE",
        make(b04(B04[0], N_Num_Assure=number_of(FIRST))),
        B04[0],
        "B04",
        "N_Num_Assure",
    ),
    Case(
        "unregistered-without-cin",
        "ENTRANT_SANS_CIN",
        make(b04(B04[0], N_Num_Assure=0, L_Num_CIN="")),
        B04[0],
        "B04",
        "L_Num_CIN",
    ),
    Case(
        "entrant-without-name",
        "ENTRANT_SANS_NOM",
        make(b04(B04[1], L_Nom_Prenom="")),
        B04[1],
        "B04",
        "L_Nom_Prenom",
    ),
    Case(
        "blank-number-with-a-name",
        "CHAMP_NON_NUMERIQUE",
        make(b04(B04[0], N_Num_Assure="")),
        B04[0],
        "B04",
        "N_Num_Assure",
    ),
    Case(
        "empty-b04-among-entrants",
        "B04_VIDE_MAL_PLACE",
        make(blank_entrant_after_real_ones()),
        B04[-1] + 1,
        "B04",
        None,
    ),
    Case(
        "b02-27-days",
        "JOURS_HORS_LIMITES",
        make(b02(FIRST, **working(N_Jours_Declares=27))),
        FIRST,
        "B02",
        "N_Jours_Declares",
        value="27",
    ),
    Case(
        "b04-99-days",
        "JOURS_HORS_LIMITES",
        make(b04(B04[0], N_Nbr_Jours=99)),
        B04[0],
        "B04",
        "N_Nbr_Jours",
        value="99",
    ),
    Case(
        "b02-capped-below-real",
        "PLAFOND",
        make(b02(FIRST, **working(N_Salaire_Plaf=399_999))),
        FIRST,
        "B02",
        "N_Salaire_Plaf",
        value="000399999",
    ),
    Case(
        "b02-not-capped",
        "PLAFOND",
        make(b02(FIRST, **working(N_Salaire_Reel=800_000, N_Salaire_Plaf=800_000))),
        FIRST,
        "B02",
        "N_Salaire_Plaf",
        value="000800000",
    ),
    Case(
        "b04-capped-too-low",
        "PLAFOND",
        make(b04(B04[0], N_Sal_Reel=700_000, N_Sal_Plaf=500_000)),
        B04[0],
        "B04",
        "N_Sal_Plaf",
    ),
    Case(
        "occasional-capped-above-real",
        "PLAFOND_OCCASIONNEL",
        make(b04(B04[0], N_Num_Assure=999_999_999, N_Sal_Reel=100_000, N_Sal_Plaf=200_000)),
        B04[0],
        "B04",
        "N_Sal_Plaf",
    ),
    Case(
        "unknown-situation",
        "SITUATION_INCONNUE",
        make(b02(FIRST, **working(L_Situation="XX"))),
        FIRST,
        "B02",
        "L_Situation",
        value="XX",
    ),
    Case(
        "einv-situation",
        "SITUATION_INCONNUE",
        make(b02(FIRST, **working(L_Situation="IP"))),  # EINV's list: rejected (§9)
        FIRST,
        "B02",
        "L_Situation",
        value="IP",
    ),
    Case(
        "mp-with-pay",
        "SITUATION_MP_NON_NULS",
        make(b02(FIRST, **working(L_Situation="MP"))),
        FIRST,
        "B02",
        "L_Situation",
        value="MP",
    ),
    Case(
        "mp-with-days-only",
        "SITUATION_MP_NON_NULS",
        make(b02(FIRST, **working(L_Situation="MP", N_Salaire_Reel=0, N_Salaire_Plaf=0))),
        FIRST,
        "B02",
        "L_Situation",
    ),
    Case(
        "cs-with-pay",
        "SITUATION_SANS_ACTIVITE",
        make(b02(FIRST, **working(L_Situation="CS"))),
        FIRST,
        "B02",
        "L_Situation",
        value="CS",
    ),
    Case(
        "ms-with-days",
        "SITUATION_SANS_ACTIVITE",
        make(b02(FIRST, **working(L_Situation="MS", N_Salaire_Reel=0, N_Salaire_Plaf=0))),
        FIRST,
        "B02",
        "L_Situation",
        value="MS",
    ),
    Case(
        "days-without-pay",
        "SALAIRE_NUL_EN_ACTIVITE",
        make(b02(FIRST, **working(N_Salaire_Reel=0, N_Salaire_Plaf=0))),
        FIRST,
        "B02",
        "N_Salaire_Reel",
    ),
    Case(
        "so-keeps-af",
        "AF_A_REVERSER",
        make(
            b02(
                FIRST,
                L_Situation="SO",
                N_Jours_Declares=0,
                N_Salaire_Reel=0,
                N_Salaire_Plaf=0,
                N_Enfants=1,
                N_AF_A_Payer=30_000,
                N_AF_A_Deduire=0,
                N_AF_Net_A_Payer=30_000,
                N_AF_A_Reverser=0,
            )
        ),
        FIRST,
        "B02",
        "N_AF_A_Reverser",
        value="000000",
    ),
    Case(
        "de-reverses-too-much",
        "AF_A_REVERSER",
        make(
            b02(
                FIRST,
                L_Situation="DE",
                N_Jours_Declares=0,
                N_Salaire_Reel=0,
                N_Salaire_Plaf=0,
                N_Enfants=1,
                N_AF_A_Payer=30_000,
                N_AF_A_Deduire=10_000,
                N_AF_Net_A_Payer=20_000,
                N_AF_A_Reverser=30_000,
            )
        ),
        FIRST,
        "B02",
        "N_AF_A_Reverser",
        value="030000",
    ),
    Case(
        "b02-control-sum",
        "SOMME_CONTROLE",
        make(
            recompute_totals(
                set_fields(DEC, SECOND, "B02", {"S_Ctr": get_int(DEC, SECOND, "B02", "S_Ctr") + 1}),
                control_sums=False,
            )
        ),
        SECOND,
        "B02",
        "S_Ctr",
    ),
    Case(
        "b04-control-sum",
        "SOMME_CONTROLE",
        make(
            recompute_totals(
                set_fields(DEC, B04[1], "B04", {"S_Ctr": get_int(DEC, B04[1], "B04", "S_Ctr") - 1}),
                control_sums=False,
            )
        ),
        B04[1],
        "B04",
        "S_Ctr",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case):
    check_case(case)


# --- things that must stay accepted -----------------------------------------------------------

ACCEPTED = {
    # Each variant obeys every rule; totals and control sums are recomputed.
    "full-month-at-ceiling": b02(FIRST, **working(N_Salaire_Reel=CEILING, N_Salaire_Plaf=CEILING)),
    "above-ceiling-capped": b02(
        FIRST, **working(N_Salaire_Reel=CEILING + 1, N_Salaire_Plaf=CEILING)
    ),
    "26-days": b02(FIRST, **working(N_Jours_Declares=26)),
    "0-days-with-pay": b02(FIRST, **working(N_Jours_Declares=0)),
    "so-with-zeros-and-af-back": b02(
        FIRST,
        **working(
            L_Situation="SO",
            N_Jours_Declares=0,
            N_Salaire_Reel=0,
            N_Salaire_Plaf=0,
            N_AF_A_Reverser=get_int(DEC, FIRST, "B02", "N_AF_Net_A_Payer"),
        ),
    ),
    "it-with-pay": b02(FIRST, **working(L_Situation="IT")),
    "mp-with-zeros": b02(
        FIRST,
        **working(L_Situation="MP", N_Jours_Declares=0, N_Salaire_Reel=0, N_Salaire_Plaf=0),
    ),
    "occasional-capped-below-real": b04(
        B04[0], N_Num_Assure=999_999_999, N_Sal_Reel=800_000, N_Sal_Plaf=100_000
    ),
    "occasional-without-name": b04(
        B04[0], N_Num_Assure=999_999_999, L_Nom_Prenom="", N_Sal_Reel=0, N_Sal_Plaf=0
    ),
    "unregistered-with-cin": b04(B04[0], N_Num_Assure=0, L_Num_CIN="AB123456"),
    "two-occasionals": recompute_totals(
        set_fields(
            set_fields(DEC, B04[0], "B04", {"N_Num_Assure": 999_999_999}),
            B04[1],
            "B04",
            {"N_Num_Assure": 999_999_999},
        )
    ),
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_variants_are_accepted(raw):
    result = run(raw)
    assert result.findings.total == 0, [a.code for a in result.findings.anomalies]
    assert result.status == "accepted"


def test_wrong_insured_key_is_only_a_warning():
    result = run(b02(SECOND, N_Num_Assure=NOT_IN_FILE + 1))
    (anomaly,) = result.findings.anomalies
    assert anomaly.code == "CLE_ASSURE"
    assert not anomaly.blocking
    assert "attendue : 5" in anomaly.message  # 123456785 is the valid one
    assert result.status == "accepted"


def test_duplicate_points_at_the_first_line():
    result = run(b02(SECOND, N_Num_Assure=number_of(FIRST)))
    (anomaly,) = result.findings.anomalies
    assert f"(aussi ligne {FIRST})" in anomaly.message


def test_plafond_message_gives_the_expected_capped_salary():
    result = run(b02(FIRST, **working(N_Salaire_Reel=800_000, N_Salaire_Plaf=800_000)))
    (anomaly,) = result.findings.anomalies
    assert anomaly.message == (
        "Salaire plafonné 000800000 incorrect : attendu 600000 (plafond de la période)."
    )


def test_control_sum_message_gives_the_recomputed_sum():
    ctr = get_int(DEC, SECOND, "B02", "S_Ctr")
    raw = recompute_totals(
        set_fields(DEC, SECOND, "B02", {"S_Ctr": ctr + 1}),
        control_sums=False,
    )
    (anomaly,) = run(raw).findings.anomalies
    assert anomaly.message == f"Somme de contrôle {ctr + 1:019d} erronée : attendu {ctr}."


def test_situation_rank_is_part_of_the_control_sum():
    # IL has rank 4 (§9): the same line written with the blank rank is off by exactly 4.
    raw = set_fields(DEC, FIRST, "B02", working(L_Situation="IL"))
    stale = recompute_totals(set_fields(DEC, FIRST, "B02", working()))
    stale = set_fields(stale, FIRST, "B02", {"L_Situation": "IL"})
    (anomaly,) = run(stale).findings.anomalies
    assert anomaly.code == "SOMME_CONTROLE"
    assert anomaly.message.endswith(f"attendu {get_int(stale, FIRST, 'B02', 'S_Ctr') + 4}.")
    assert run(recompute_totals(raw)).findings.total == 0
