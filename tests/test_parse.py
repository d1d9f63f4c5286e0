"""transforms.parse: line splitting, the byte matrix, N/AN fields and their types."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import RECORD_LENGTH, data_fields, field, record_layouts
from tests.edi import declaration, lines_of, preetabli, set_field
from transforms.parse import BOM, SMALL_BLOCK, ParsedFile, parse, split_lines

S_CTR = field("B02", "S_Ctr")


def record(tag: str, fill: bytes = b" ", length: int = RECORD_LENGTH) -> bytes:
    """A line of one record type, padded to `length` with `fill`."""
    return tag.encode().ljust(length, fill)


def b02_with_control_sum(text: str) -> bytes:
    assert len(text) == S_CTR.length
    line = bytearray(record("B02", b"0"))
    line[field("B02", "L_Nom_Prenom").start : field("B02", "L_Nom_Prenom").stop] = b" " * 60
    line[field("B02", "L_Situation").start : field("B02", "L_Situation").stop] = b"  "
    line[field("B02", "L_filler").start :] = b" " * field("B02", "L_filler").length
    line[S_CTR.start : S_CTR.stop] = text.encode()
    return bytes(line)


def values(parsed: ParsedFile, record: str) -> dict[str, list]:
    """Every data field of a record's lines as Python values: int, None when a numeric field
    is not all digits, and text right-stripped."""
    block = parsed.block(record)
    out: dict[str, list] = {"line": block.line.tolist()}
    for f in data_fields(record):
        if f.numeric:
            pairs = zip(block.number(f.name).tolist(), block.valid(f.name).tolist(), strict=True)
            out[f.name] = [value if ok else None for value, ok in pairs]
        else:
            out[f.name] = block.strings(f.name).to_pylist()
    return out


def types(lines) -> list[str]:
    """Record types as str, whether the parser keeps them as str or bytes."""
    return [t.decode() if isinstance(t, bytes) else str(t) for t in lines.record_types.tolist()]


# --- line splitting ---------------------------------------------------------------------------

A, B, C = record("B00"), record("B01"), record("B02")


@pytest.mark.parametrize(
    ("raw", "count", "endings", "final_newline"),
    [
        (A + b"\n" + B + b"\n", 2, {"LF"}, True),
        (A + b"\r\n" + B + b"\r\n", 2, {"CRLF"}, True),
        (A + b"\r" + B + b"\r", 2, {"CR"}, True),
        (A + b"\n" + B + b"\r\n" + C + b"\r", 3, {"LF", "CRLF", "CR"}, True),
        (A + b"\n" + B, 2, {"LF"}, False),
        (A + b"\r\n" + B, 2, {"CRLF"}, False),
        (A, 1, set(), False),
        (A + b"\r", 1, {"CR"}, True),  # a CR as the very last byte is a terminator
    ],
    ids=["LF", "CRLF", "CR", "mixed", "no-final-LF", "no-final-CRLF", "one-line-bare", "final-CR"],
)
def test_split_lines_terminators(raw, count, endings, final_newline):
    lines = split_lines(raw)
    assert lines.count == count
    assert set(lines.endings) == endings
    assert lines.final_newline is final_newline
    # Every line is a whole 260-character record: no terminator byte leaks into a line.
    assert lines.length.tolist() == [RECORD_LENGTH] * count
    assert types(lines) == ["B00", "B01", "B02"][:count]


def test_final_terminator_makes_no_empty_line():
    assert split_lines(A + b"\n").count == 1
    assert split_lines(A + b"\r\n").count == 1


def test_extra_trailing_empty_line_is_kept_visible():
    # A blank line after the last record is a line of length 0, for the validator to report.
    lines = split_lines(A + b"\n\n")
    assert lines.count == 2
    assert lines.length.tolist() == [RECORD_LENGTH, 0]
    crlf = split_lines(A + b"\r\n\r\n")
    assert crlf.length.tolist() == [RECORD_LENGTH, 0]
    assert crlf.endings == frozenset({"CRLF"})


def test_crlf_split_across_lines_is_not_two_terminators():
    # CR immediately followed by LF is one terminator, never a CR line plus an empty LF line.
    lines = split_lines(b"x\r\ny\r\n")
    assert lines.count == 2
    assert lines.length.tolist() == [1, 1]


def test_lone_lf_and_lone_cr_lines_of_zero_length():
    assert split_lines(b"\n").length.tolist() == [0]
    assert split_lines(b"\r").length.tolist() == [0]
    assert split_lines(b"\r\n").length.tolist() == [0]
    assert split_lines(b"\n\r").length.tolist() == [0, 0]  # LF then a lone CR


def test_empty_input():
    lines = split_lines(b"")
    assert lines.count == 0
    assert lines.rows.shape == (0, RECORD_LENGTH)
    assert not lines.has_bom
    parsed = parse(b"")
    for name in record_layouts():
        assert values(parsed, name) == {"line": []} | {f.name: [] for f in data_fields(name)}


def test_bom_is_flagged_and_not_part_of_the_first_line():
    lines = split_lines(BOM + A + b"\n" + B + b"\n")
    assert lines.has_bom
    assert lines.count == 2
    assert lines.length.tolist() == [RECORD_LENGTH, RECORD_LENGTH]
    assert types(lines) == ["B00", "B01"]
    assert not split_lines(A + b"\n").has_bom
    only_bom = split_lines(BOM)
    assert only_bom.has_bom
    assert only_bom.count == 0


def test_short_and_long_lines_keep_their_true_length():
    half = RECORD_LENGTH // 2
    short, long = record("B02", length=half), record("B02", b"9", length=300)
    tiny = record("B02", length=half - 1)
    lines = split_lines(short + b"\n" + long + b"\n" + tiny + b"\n" + A + b"\n")
    assert lines.length.tolist() == [half, 300, half - 1, RECORD_LENGTH]
    # Rows for the lines of at least half a record: padded with spaces, or cut at 260
    # (nothing of the next line). The shorter one keeps its length, type and text, no row.
    assert lines.row_lines.tolist() == [0, 1, 3]
    assert lines.rows.shape == (3, RECORD_LENGTH)
    assert bytes(lines.rows[0, half:]) == b" " * (RECORD_LENGTH - half)
    assert bytes(lines.rows[1]) == long[:RECORD_LENGTH]
    assert bytes(lines.rows[2]) == A
    assert types(lines) == ["B02", "B02", "B02", "B00"]
    assert lines.text([3]) == [tiny.decode().ljust(RECORD_LENGTH)]
    assert len(parse(short + b"\n" + tiny + b"\n").block("B02")) == 1


def test_short_last_line_without_terminator_is_padded():
    lines = split_lines(A + b"\nB0")
    assert lines.length.tolist() == [RECORD_LENGTH, 2]
    assert lines.text([2]) == ["B0".ljust(RECORD_LENGTH)]
    assert types(lines) == ["B00", "B0 "]


def test_odd_bytes_are_found_in_any_line_and_only_within_260_columns():
    lines = split_lines(b"ab\x01\n" + A + b"\xe9\n" + b"B02\x7f" + b" " * 300 + b"\r\n\tx\r")
    assert lines.length.tolist() == [3, RECORD_LENGTH + 1, 304, 2]
    # Column 261 of the second line is past the record: its length is the problem there.
    assert lines.odd_column.tolist() == [3, 0, 4, 1]
    assert not lines.printable_only
    clean = split_lines(b"x\r\n\ny\rz")
    assert clean.printable_only
    assert clean.odd_column is None


def test_text_shows_non_printable_bytes_as_question_marks():
    raw = b"B02\x01\xe9\t" + b" " * 254
    lines = split_lines(raw)
    assert lines.text([1], 0, 7) == ["B02??? "]


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"])
def test_line_endings_never_change_the_tables(ending):
    lf = parse(declaration())
    other = parse(declaration().replace(b"\n", ending))
    for name in record_layouts():
        assert values(other, name) == values(lf, name), name


def test_irregular_line_lengths_give_the_same_fields():
    # Mixed terminators defeat the strided fast path; the copying path must agree with it.
    lines = lines_of(declaration())
    mixed = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))
    lf = parse(declaration())
    for name in record_layouts():
        assert values(parse(mixed), name) == values(lf, name), name


# --- fields -----------------------------------------------------------------------------------


def test_numeric_and_text_fields_of_a_sample_line():
    raw = declaration()
    raw = set_field(raw, 3, "B02", "N_Jours_Declares", 17)
    raw = set_field(raw, 3, "B02", "L_Nom_Prenom", "EL AMRANI" + " " * 21 + "SAID")
    raw = set_field(raw, 3, "B02", "L_Situation", "IL")
    b02 = values(parse(raw), "B02")
    assert b02["line"][0] == 3
    assert b02["N_Jours_Declares"][0] == 17
    assert b02["L_Nom_Prenom"][0] == "EL AMRANI" + " " * 21 + "SAID"  # inner spaces kept
    assert b02["L_Situation"][0] == "IL"
    assert b02["line"] == list(range(3, 3 + len(b02["line"])))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0000000000000000000", 0),
        ("0000000000101173229", 101_173_229),  # the worked example of edi_format.md §8
        ("9223372036854775807", 2**63 - 1),  # int64 max, exactly
        ("9223372036854775808", None),  # one more cannot be a correct figure
        ("9999999999999999999", None),
        ("000000000010117322 ", None),  # a space is not a digit
        (" 000000000101173229", None),
        ("00000000001011732-9", None),
        ("000000000010117322A", None),
    ],
)
def test_control_sum_read_exactly(text, expected):
    assert values(parse(b02_with_control_sum(text) + b"\n"), "B02")["S_Ctr"] == [expected]


def test_non_digit_numeric_field_is_invalid_but_others_are_kept():
    raw = set_field(declaration(), 3, "B02", "N_Enfants", "0A")
    raw = set_field(raw, 4, "B02", "N_Salaire_Reel", " " * 13)
    b02 = parse(raw).block("B02")
    rest = [True] * (len(b02) - 2)
    assert b02.valid("N_Enfants").tolist() == [False, True, *rest]
    assert b02.valid("N_Salaire_Reel").tolist() == [True, False, *rest]
    assert b02.number("N_Enfants")[0] == 0  # read as 0: never a guess
    assert b02.valid("N_Num_Assure").all()


def test_text_fields_are_right_stripped_only():
    raw = set_field(declaration(), 2, "B01", "L_Raison_Sociale", "  SOCIETE X  ")
    assert values(parse(raw), "B01")["L_Raison_Sociale"] == ["  SOCIETE X"]
    blank = set_field(declaration(), 2, "B01", "L_Activite", "")
    assert values(parse(blank), "B01")["L_Activite"] == [""]


def test_non_printable_bytes_in_text_fields_become_question_marks():
    raw = set_field(declaration(), 3, "B02", "L_Nom_Prenom", b"EL\xc3\xa9\x01")
    assert values(parse(raw), "B02")["L_Nom_Prenom"][0] == "EL???"


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(record_layouts()))
def test_numbers_are_int64_and_text_is_arrow_strings(name):
    block = parse(preetabli() if name.startswith("A") else declaration()).block(name)
    assert block.line.dtype == np.int64
    for f in data_fields(name):
        if f.numeric:
            assert block.number(f.name).dtype == np.int64, f.name
            assert block.valid(f.name).dtype == np.bool_, f.name
        else:
            assert block.strings(f.name).type == pa.string(), f.name


def test_big_values_stay_exact():
    # Above 2**53 a float64 would round them: numbers are int64 end to end.
    big = parse(b02_with_control_sum("0009007199254740993") + b"\n").block("B02")
    assert int(big.number("S_Ctr")[0]) == 2**53 + 1


def test_block_is_cached_per_record():
    parsed = parse(declaration())
    assert parsed.block("B02") is parsed.block("B02")


def test_unknown_record_types_are_in_no_block():
    parsed = parse(A + b"\n" + record("X99") + b"\n" + record("A02") + b"\n")
    assert types(parsed.lines) == ["B00", "X99", "A02"]
    assert parsed.block("B00").line.tolist() == [1]
    assert parsed.block("A02").line.tolist() == [3]
    assert sum(len(parsed.block(name)) for name in record_layouts()) == 2


# --- decoding many lines at once ----------------------------------------------------------------

NUMERIC_B02 = [f for f in data_fields("B02") if f.numeric]


def oracle(text: bytes) -> int | None:
    """What a numeric field says, field by field in plain Python."""
    return int(text) if text.isdigit() and int(text) < 2**63 else None


@settings(max_examples=40, deadline=None)
@given(
    st.integers(SMALL_BLOCK + 1, 40),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.01, 0.3]),
)
def test_many_lines_decode_like_int(rows, seed, odd_share):
    # Random digits (19-digit fields past int64's maximum too), some bytes replaced by
    # anything; decoded in slices of 7 lines so that slice boundaries are crossed.
    rng = np.random.default_rng(seed)
    matrix = np.full((rows, RECORD_LENGTH), ord(" "), np.uint8)
    matrix[:, :3] = np.frombuffer(b"B02", np.uint8)
    for f in NUMERIC_B02:
        matrix[:, f.start : f.stop] = rng.integers(ord("0"), ord("9") + 1, (rows, f.length))
    odd = rng.random((rows, RECORD_LENGTH)) < odd_share
    odd[:, :3] = False
    matrix[odd] = rng.integers(0x20, 0x7F, int(odd.sum()))
    raw = b"".join(bytes(row) + b"\n" for row in matrix)
    with mock.patch("transforms.parse.DECODE_ROWS", 7):
        got = values(parse(raw), "B02")
    for f in NUMERIC_B02:
        assert got[f.name] == [oracle(bytes(row[f.start : f.stop])) for row in matrix], f.name
