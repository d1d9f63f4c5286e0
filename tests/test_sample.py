"""cnss_edi.sample: the generated files obey edi_format.md, checked independently.

The checks below re-read the files line by line with plain Python (offsets from
schemas.field(), sums as Python ints) rather than reusing the generator's numpy code.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnss_edi.sample import SampleTooLarge, max_employees, write_samples
from schemas import RECORD_LENGTH, ceiling_for, field, record_type_field, situations
from tests.edi import record_of
from transforms.keys import affiliate_key_ok, insured_key

AFFILIATE = 1234567  # 123456 has check key 7
PERIOD = "202610"
NAME = re.compile(r"[A-Z][A-Z ]*")
CIN = re.compile(r"[A-Z]{1,2}[0-9]{5,6} *")
IDLE = {"SO", "CS", "MS", "MP"}
SMIG_2026 = 342_272  # centimes; the plausibility warning fires at SMIG/26 x (days - 1)


def insured_ok(numbers: np.ndarray | list[int]) -> np.ndarray:
    """Does each insured number end with its check key?"""
    numbers = np.asarray(numbers, dtype=np.int64)
    return insured_key(numbers // 10) == numbers % 10


class Pair:
    """One employer's préétabli and declaration, cut into records."""

    def __init__(self, pre: Path, dec: Path) -> None:
        self.pre, self.dec = pre, dec
        self.order: dict[Path, list[str]] = {}
        self.records: dict[str, list[bytes]] = {}
        for path in (pre, dec):
            data = path.read_bytes()
            assert data.endswith(b"\n")
            lines = data[:-1].split(b"\n")
            self.order[path] = [record_of(line) for line in lines]
            for line in lines:
                self.records.setdefault(record_of(line), []).append(line)

    def text(self, record: str, name: str) -> list[str]:
        f = field(record, name)
        return [line[f.start : f.stop].decode("ascii") for line in self.records[record]]

    def ints(self, record: str, name: str) -> list[int]:
        return [int(value) for value in self.text(record, name)]

    def one(self, record: str, name: str) -> int:
        (value,) = self.ints(record, name)
        return value

    @property
    def affiliate(self) -> int:
        return self.one("A01", "N_Num_Affilie")

    @property
    def period(self) -> str:
        return self.text("A01", "L_Periode")[0]


def _pairs(paths: list[Path]) -> list[Pair]:
    assert len(paths) % 2 == 0
    return [Pair(paths[i], paths[i + 1]) for i in range(0, len(paths), 2)]


def _write(out: Path, **kwargs: object) -> list[Pair]:
    args = {"affiliate": AFFILIATE, "period": PERIOD, "employees": 40, **kwargs}
    return _pairs(write_samples(out, **args))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """5,000 employees: enough for every situation code to show up."""
    (pair,) = _write(tmp_path_factory.mktemp("big"), employees=5000, seed=3)
    return pair


# Checks shared by the example tests and the property test ----------------------------------


def check_lines(pair: Pair) -> None:
    for path, kinds in pair.order.items():
        data = path.read_bytes()
        assert b"\r" not in data
        assert all(len(line) == RECORD_LENGTH for line in data[:-1].split(b"\n"))
        assert all(32 <= byte <= 126 for byte in data.replace(b"\n", b""))
        k = kinds.count("A02") + kinds.count("B02")
        m = kinds.count("B04")
        expected = (
            ["A00", "A01", *["A02"] * k, "A03"]
            if path == pair.pre
            else ["B00", "B01", *["B02"] * k, "B03", *["B04"] * m, "B05", "B06"]
        )
        assert kinds == expected
    assert pair.pre.name == f"AFFEBDS_{pair.affiliate:07d}_{pair.period}.txt"
    assert pair.dec.name == f"DS_{pair.affiliate:07d}_{pair.period}.txt"


def check_header(pair: Pair) -> None:
    for record in ("A01", "A02", "A03", "B01", "B02", "B03", "B04", "B05", "B06"):
        assert set(pair.ints(record, "N_Num_Affilie")) == {pair.affiliate}
        assert set(pair.text(record, "L_Periode")) == {pair.period}
    transfer = pair.text("A00", "N_Identif_Transfert")[0]
    assert transfer == pair.text("B00", "N_Identif_Transfert")[0]
    assert transfer[:11] == f"{pair.affiliate:07d}{pair.period[2:]}"
    assert transfer.isdigit()
    assert pair.text("A00", "L_Cat") == ["A0"]
    assert pair.text("B00", "L_Cat") == ["B0"]
    after_type = record_type_field().stop  # the same header text, whatever its record type
    assert pair.records["A01"][0][after_type:] == pair.records["B01"][0][after_type:]
    assert pair.text("A01", "D_Date_Emission") == [pair.period + "26"]
    year, month = int(pair.period[:4]), int(pair.period[4:])
    due = f"{year + month // 12}{month % 12 + 1:02d}10"
    assert pair.text("A01", "D_Date_Exig") == [due]
    for name in ("L_Raison_Sociale", "L_Activite", "L_Adresse", "L_Ville", "C_Code_Postal"):
        assert re.fullmatch(r"[A-Z0-9][A-Z0-9 ]* *", pair.text("A01", name)[0])


def check_numbers(pair: Pair) -> None:
    assert affiliate_key_ok([pair.affiliate])[0]
    staff = pair.ints("A02", "N_Num_Assure")
    entrants = [n for n in pair.text("B04", "N_Num_Assure") if n.strip()]
    numbers = staff + [int(n) for n in entrants]
    assert all(100_000_000 < n <= 199_999_999 for n in numbers)
    assert insured_ok(numbers).all()
    assert len(set(numbers)) == len(numbers)
    assert staff == sorted(staff)
    assert pair.ints("B02", "N_Num_Assure") == staff
    assert entrants == sorted(entrants)


def check_staff_lines(pair: Pair) -> None:
    """A02 and B02 agree; AF, days, salaries and situations follow §9-§11."""
    for name in ("L_Nom_Prenom", "N_Enfants", "N_AF_A_Payer", "N_AF_A_Deduire", "N_AF_Net_A_Payer"):
        assert pair.text("A02", name) == pair.text("B02", name)
    half = field("A02", "L_Nom_Prenom").length // 2
    for name in pair.text("A02", "L_Nom_Prenom"):
        assert NAME.fullmatch(name[:half].rstrip())
        assert NAME.fullmatch(name[half:].rstrip())
    ceiling = ceiling_for(pair.period)
    rows = zip(
        *(pair.ints("B02", n) for n in ("N_Enfants", "N_AF_A_Payer", "N_AF_A_Deduire")),
        *(pair.ints("B02", n) for n in ("N_AF_Net_A_Payer", "N_AF_A_Reverser")),
        *(pair.ints("B02", n) for n in ("N_Jours_Declares", "N_Salaire_Reel", "N_Salaire_Plaf")),
        (code.strip() for code in pair.text("B02", "L_Situation")),
        strict=True,
    )
    for children, payer, deduct, net, reverse, days, real, capped, code in rows:
        assert 0 <= children <= 6
        assert 0 <= deduct <= payer
        assert net == payer - deduct
        assert reverse == (net if code in ("SO", "DE") else 0)
        assert code in situations()
        assert 0 <= days <= 26
        assert capped == min(real, ceiling)
        if code in IDLE:
            assert days == real == 0
        else:
            assert days > 0
            assert real >= 150_000
            assert real > SMIG_2026 * (days - 1) / 26


def check_entrant_lines(pair: Pair) -> None:
    ceiling = ceiling_for(pair.period)
    if pair.text("B04", "N_Num_Assure") == [" " * 9]:  # the empty B04 of §6
        line = pair.records["B04"][0].decode()
        assert line[field("B04", "L_Nom_Prenom").start : field("B04", "L_Num_CIN").stop].isspace()
        for name in ("N_Nbr_Jours", "N_Sal_Reel", "N_Sal_Plaf", "S_Ctr"):
            assert set(pair.text("B04", name)[0]) == {"0"}
        return
    half = field("B04", "L_Nom_Prenom").length // 2
    for name, cin in zip(
        pair.text("B04", "L_Nom_Prenom"), pair.text("B04", "L_Num_CIN"), strict=True
    ):
        assert NAME.fullmatch(name[:half].rstrip())
        assert NAME.fullmatch(name[half:].rstrip())
        assert CIN.fullmatch(cin)
    days, real = pair.ints("B04", "N_Nbr_Jours"), pair.ints("B04", "N_Sal_Reel")
    for d, r, capped in zip(days, real, pair.ints("B04", "N_Sal_Plaf"), strict=True):
        assert 1 <= d <= 26
        assert r >= 150_000
        assert capped == min(r, ceiling)


def check_s_ctr(pair: Pair) -> None:
    rank = {code: s.rank for code, s in situations().items()}
    b02 = zip(
        *(pair.ints("B02", n) for n in ("N_Num_Assure", "N_AF_A_Reverser", "N_Jours_Declares")),
        *(pair.ints("B02", n) for n in ("N_Salaire_Reel", "N_Salaire_Plaf", "S_Ctr")),
        pair.text("B02", "L_Situation"),
        strict=True,
    )
    for number, reverse, days, real, capped, ctr, code in b02:
        assert ctr == number + reverse + days + real + capped + rank[code.strip()]
    numbers = [int(n) if n.strip() else 0 for n in pair.text("B04", "N_Num_Assure")]
    b04 = zip(numbers, *(pair.ints("B04", n) for n in ("N_Nbr_Jours", "N_Sal_Reel")), strict=True)
    for (number, days, real), capped, ctr in zip(
        b04, pair.ints("B04", "N_Sal_Plaf"), pair.ints("B04", "S_Ctr"), strict=True
    ):
        assert ctr == number + days + real + capped


def check_totals(pair: Pair) -> None:
    a02 = {
        "N_T_Enfants": "N_Enfants",
        "N_T_AF_A_Payer": "N_AF_A_Payer",
        "N_T_AF_A_Deduire": "N_AF_A_Deduire",
        "N_T_AF_Net_A_Payer": "N_AF_Net_A_Payer",
        "N_T_Num_Imma": "N_Num_Assure",
    }
    assert pair.one("A03", "N_Nbr_Salaries") == len(pair.records["A02"])
    for total, line in a02.items():
        assert pair.one("A03", total) == sum(pair.ints("A02", line))
    b02 = a02 | {
        "N_T_AF_A_Reverser": "N_AF_A_Reverser",
        "N_T_Jours_Declares": "N_Jours_Declares",
        "N_T_Salaire_Reel": "N_Salaire_Reel",
        "N_T_Salaire_Plaf": "N_Salaire_Plaf",
        "N_T_Ctr": "S_Ctr",
    }
    assert pair.one("B03", "N_Nbr_Salaries") == len(pair.records["B02"])
    for total, line in b02.items():
        assert pair.one("B03", total) == sum(pair.ints("B02", line))
    b04 = {
        "N_T_Jours_Declares": "N_Nbr_Jours",
        "N_T_Salaire_Reel": "N_Sal_Reel",
        "N_T_Salaire_Plaf": "N_Sal_Plaf",
        "N_T_Ctr": "S_Ctr",
    }
    real = [n for n in pair.text("B04", "N_Num_Assure") if n.strip()]
    assert pair.one("B05", "N_Nbr_Salaries") == len(real)
    assert pair.one("B05", "N_T_Num_Imma") == sum(map(int, real))
    for total, line in b04.items():
        assert pair.one("B05", total) == sum(pair.ints("B04", line))
    for total in ("N_Nbr_Salaries", "N_T_Num_Imma", *b04):
        assert pair.one("B06", total) == pair.one("B03", total) + pair.one("B05", total)


ALL_CHECKS = (
    check_lines,
    check_header,
    check_numbers,
    check_staff_lines,
    check_entrant_lines,
    check_s_ctr,
    check_totals,
)


# Example tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_big_sample_obeys_the_format(big: Pair, check) -> None:
    check(big)


def test_big_sample_is_realistic(big: Pair) -> None:
    codes = {code.strip() for code in big.text("B02", "L_Situation")}
    assert codes == set(situations())  # every code, blank included
    days = big.ints("B02", "N_Jours_Declares")
    assert days.count(26) > 0.75 * len(days)
    real = big.ints("B02", "N_Salaire_Reel")
    full = sorted(r for r, d in zip(real, days, strict=True) if d == 26)
    assert 400_000 <= full[len(full) // 2] <= 600_000  # median near 5,000 MAD
    above = sum(r > ceiling_for(PERIOD) for r in real) / len(real)
    assert 0.15 < above < 0.5
    assert len(big.records["B04"]) == 5000 // 50  # about 2 % entrants by default
    assert 0 < sum(big.ints("B02", "N_AF_A_Deduire")) < sum(big.ints("B02", "N_AF_A_Payer"))


def test_no_entrants_writes_one_blank_b04(tmp_path: Path) -> None:
    (pair,) = _write(tmp_path, entrants=0)
    assert len(pair.records["B04"]) == 1
    assert pair.text("B04", "N_Num_Assure") == [" " * 9]
    for check in ALL_CHECKS:
        check(pair)
    for name in ("N_Nbr_Salaries", "N_T_Num_Imma", "N_T_Jours_Declares", "N_T_Ctr"):
        assert pair.one("B05", name) == 0


def test_several_employers(tmp_path: Path) -> None:
    calls = []
    paths = write_samples(
        tmp_path / "new" / "dir",
        affiliate=AFFILIATE,
        period=PERIOD,
        employees=30,
        employers=3,
        progress=lambda done, total: calls.append((done, total)),
    )
    pairs = _pairs(paths)
    affiliates = [p.affiliate for p in pairs]
    assert affiliates[0] == AFFILIATE
    assert len(set(affiliates)) == 3
    assert affiliate_key_ok(affiliates).all()
    assert calls == [(30, 90), (60, 90), (90, 90)]
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == sorted(
        p.name for p in paths
    )  # no temporary file left behind
    for pair in pairs:
        for check in ALL_CHECKS:
            check(pair)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def run(name: str, **kwargs: object) -> list[bytes]:
        paths = write_samples(tmp_path / name, affiliate=AFFILIATE, period=PERIOD, **kwargs)
        return [p.read_bytes() for p in paths]

    first = run("a", employees=200, employers=2, seed=11)
    assert first == run("b", employees=200, employers=2, seed=11)
    assert first != run("c", employees=200, employers=2, seed=12)
    # Employer i's files depend on (seed, i) only, not on how many employers were asked.
    assert first[:2] == run("d", employees=200, employers=1, seed=11)


def test_crlf_line_ending(tmp_path: Path) -> None:
    (_pre, dec) = write_samples(
        tmp_path, affiliate=AFFILIATE, period=PERIOD, employees=20, line_ending=b"\r\n"
    )
    lf = write_samples(tmp_path / "lf", affiliate=AFFILIATE, period=PERIOD, employees=20)
    assert dec.read_bytes().endswith(b"\r\n")
    assert dec.read_bytes().replace(b"\r\n", b"\n") == lf[1].read_bytes()


def test_affiliate_with_a_wrong_key_is_used_as_given(tmp_path: Path) -> None:
    # The public key algorithm fails on some real numbers: a warning, never a refusal.
    paths = write_samples(tmp_path, affiliate=1234565, period=PERIOD, employees=5, employers=2)
    assert [p.name for p in paths] == [
        "AFFEBDS_1234565_202610.txt",
        "DS_1234565_202610.txt",
        "AFFEBDS_1234575_202610.txt",
        "DS_1234575_202610.txt",
    ]


@pytest.mark.parametrize("affiliate", [123456, 12345674, 0, -1234567])
def test_invalid_affiliate(tmp_path: Path, affiliate: int) -> None:
    with pytest.raises(ValueError, match="affilié"):
        write_samples(tmp_path / "out", affiliate=affiliate, period=PERIOD, employees=5)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("period", ["202613", "2026-10", "20261", "201001", 202610])
def test_invalid_period(tmp_path: Path, period: object) -> None:
    with pytest.raises(ValueError, match=r"[Pp]ériode"):
        write_samples(tmp_path / "out", affiliate=AFFILIATE, period=period, employees=5)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"employees": 0},
        {"employers": 0},
        {"entrants": -1},
        {"line_ending": b"\r"},
        {"affiliate": 9_999_999, "employers": 2},
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    args = {"affiliate": AFFILIATE, "period": PERIOD, "employees": 5} | kwargs
    with pytest.raises(ValueError, match=r"employees|employers|line_ending"):
        write_samples(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_max_employees_comes_from_the_field_widths() -> None:
    days_total = 10 ** field("B06", "N_T_Jours_Declares").length - 1
    assert max_employees(entrants=0) == days_total // 26 == 38_461
    assert max_employees(entrants=100) == 38_361
    # The default ~2 % of entrants shrinks near the capacity, so any staff that fits fits.
    assert max_employees() == 38_461


@pytest.mark.parametrize("entrants", [None, 0, 500])
def test_too_large_is_refused_before_writing(tmp_path: Path, entrants: int | None) -> None:
    with pytest.raises(SampleTooLarge, match="26"):
        write_samples(
            tmp_path / "out",
            affiliate=AFFILIATE,
            period=PERIOD,
            employees=max_employees(entrants) + 1,
            entrants=entrants,
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_largest_sample_fits(tmp_path: Path) -> None:
    (_pre, dec) = write_samples(
        tmp_path, affiliate=AFFILIATE, period=PERIOD, employees=max_employees()
    )
    last = dec.read_bytes()[-(RECORD_LENGTH + 1) :].decode()
    total = field("B06", "N_T_Jours_Declares")
    count = field("B06", "N_Nbr_Salaries")
    assert last.startswith("B06")
    assert int(last[count.start : count.stop]) <= 38_461
    assert int(last[total.start : total.stop]) <= 999_999


# Property test: small samples of any shape ---------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    employees=st.integers(1, 60),
    entrants=st.none() | st.integers(0, 4),
    employers=st.integers(1, 2),
    seed=st.integers(0, 2**32),
    period=st.sampled_from(["201412", "202312", "202601", PERIOD]),
)
def test_any_small_sample_obeys_the_format(
    employees: int, entrants: int | None, employers: int, seed: int, period: str
) -> None:
    with tempfile.TemporaryDirectory() as out:
        paths = write_samples(
            Path(out),
            affiliate=AFFILIATE,
            period=period,
            employees=employees,
            employers=employers,
            entrants=entrants,
            seed=seed,
        )
        for pair in _pairs(paths):
            assert len(pair.records["A02"]) == employees
            for check in ALL_CHECKS:
                check(pair)


def test_default_entrants_make_room_near_the_capacity(tmp_path: Path) -> None:
    (_pre, dec) = write_samples(tmp_path, affiliate=AFFILIATE, period=PERIOD, employees=38_400)
    entrants = [line for line in dec.read_bytes().split(b"\n") if record_of(line) == "B04"]
    assert len(entrants) == 61  # 2 % would be 768: only what the totals can still carry


def test_flawed_copy_is_rejected_for_exactly_its_two_mistakes(tmp_path: Path) -> None:
    from cnss_edi.sample import write_flawed_copy
    from transforms.parse import parse
    from validators.declaration import validate
    from validators.preetabli import Roster

    (pre, dec) = write_samples(tmp_path, affiliate=AFFILIATE, period=PERIOD, employees=60)
    flawed = write_flawed_copy(dec)
    result = validate(
        parse(flawed.read_bytes()),
        file_name=flawed.name,
        preetabli=Roster.from_parsed(parse(pre.read_bytes())),
    )
    assert flawed.name == f"DS_{AFFILIATE}_{PERIOD}_ERREURS.txt"
    assert result.status == "rejected"
    assert sorted((a.code, a.record) for a in result.findings.anomalies) == [
        ("CARACTERE_NON_ADMIS_ENTRANT", "B04"),
        ("SITUATION_INCONNUE", "B02"),
    ]
