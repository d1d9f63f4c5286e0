"""Fuzzing parse + validate: whatever the bytes, a verdict and well-formed anomalies, no crash.

Set CNSS_FUZZ_EXAMPLES to run more examples per test (the default keeps the suite fast).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from schemas import data_fields
from tests.edi import (
    declaration,
    get_int,
    lines_of,
    preetabli,
    record_of,
    roster,
    set_field,
)
from transforms.parse import parse
from validators.anomaly import BLOCKING, RULES
from validators.declaration import Validation, validate

DEC, PRE = declaration(), preetabli()
DEC_LINES, PRE_LINES = lines_of(DEC), lines_of(PRE)
FUZZ = settings(
    max_examples=int(os.environ.get("CNSS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ENDINGS = (b"\n", b"\r\n", b"\r")


def check(data: bytes, **options) -> Validation:
    """validate(parse(data)) and every invariant a verdict must keep."""
    parsed = parse(data)
    result = validate(parsed, **options)
    findings = result.findings
    assert result.status in ("accepted", "rejected")
    assert findings.total >= len(findings.anomalies)
    assert 0 <= findings.blocking_total <= findings.total
    count = parsed.lines.count
    for anomaly in findings.anomalies:
        assert anomaly.code in RULES
        assert anomaly.severity == RULES[anomaly.code][0]
        assert anomaly.blocking == (anomaly.severity == BLOCKING)
        assert anomaly.line is None or 1 <= anomaly.line <= count, (anomaly, count)
        # Messages end up in XML acknowledgements and SQL: printable text only.
        assert anomaly.message
        assert all(ch >= " " and ch != "\x7f" for ch in anomaly.message), anomaly
        assert anomaly.value is None or all(ch >= " " for ch in anomaly.value), anomaly
    blocking = [a for a in findings.anomalies if a.blocking]
    if result.status == "accepted":
        assert findings.blocking_total == 0
        assert not blocking
    else:
        assert findings.blocking_total >= 1
        if findings.total == len(findings.anomalies):  # nothing capped away
            assert blocking
    return result


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    check(data)


@FUZZ
@given(st.text(alphabet="AB0123456 \n\r\t\x00\xe9", max_size=2000))
def test_random_edi_like_text(text):
    check(text.encode("latin-1"))


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(DEC) - 1), st.integers(0, 255)), min_size=1, max_size=12)
)
def test_byte_mutations_of_a_valid_file(changes):
    data = bytearray(DEC)
    for position, byte in changes:
        data[position] = byte
    result = check(bytes(data))
    if bytes(data) != DEC and result.status == "accepted":
        # A change the rules let through must at least leave the lines well formed.
        assert parse(bytes(data)).lines.count == len(DEC_LINES)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete"]),
            st.integers(0, len(DEC)),
            st.binary(min_size=1, max_size=40),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_insertions_and_deletions(operations):
    data = DEC
    for kind, position, chunk in operations:
        position = min(position, len(data))
        if kind == "insert":
            data = data[:position] + chunk + data[position:]
        else:
            data = data[:position] + data[position + len(chunk) :]
    check(data)
    check(data, preetabli=roster())


@FUZZ
@given(st.integers(0, len(DEC)))
def test_truncation(cut):
    result = check(DEC[:cut])
    if cut < len(DEC) - 1:  # anything shorter than the file minus its final LF
        assert result.status == "rejected"


@FUZZ
@given(st.integers(0, len(PRE)))
def test_truncated_preetabli(cut):
    result = check(PRE[:cut])
    if cut < len(PRE) - 1:
        assert result.status == "rejected"


@FUZZ
@given(
    st.lists(st.sampled_from(ENDINGS), min_size=len(DEC_LINES), max_size=len(DEC_LINES)),
    st.booleans(),
)
def test_any_line_endings_keep_a_valid_file_valid(endings, final):
    data = b"".join(line + end for line, end in zip(DEC_LINES, endings, strict=True))
    if not final:
        data = data[: -len(endings[-1])]
    result = check(data, preetabli=roster())
    assert result.findings.total == 0


@FUZZ
@given(st.lists(st.sampled_from(DEC_LINES + PRE_LINES), max_size=30))
def test_shuffled_and_repeated_records(lines):
    data = b"".join(line + b"\n" for line in lines)
    check(data)
    check(data, preetabli=roster())


NUMERIC = [
    (number, record_of(line), f.name, f.length)
    for number, line in enumerate(DEC_LINES, start=1)
    for f in data_fields(record_of(line))
    if f.numeric
]
# A B01 date may change to any other real date unnoticed (it is not tied to a total).
CHECKED = [n for n in NUMERIC if n[2] not in ("D_Date_Emission", "D_Date_Exig")]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(NUMERIC), st.integers(0, 10**19 - 1)),
        min_size=1,
        max_size=5,
    )
)
def test_random_numbers_in_numeric_fields(changes):
    # Any digits at all in any N field: big sums, int64 edges, 19-digit control sums.
    data = DEC
    for (number, record, name, length), value in changes:
        data = set_field(data, number, record, name, value % 10**length)
    check(data, preetabli=roster())


@FUZZ
@given(st.sampled_from(CHECKED), st.integers(0, 10**19 - 1))
def test_any_single_number_change_is_caught(target, value):
    # Every N field but the dates is tied to another by a total, a control sum, the header
    # or the préétabli: changing one alone never goes unnoticed.
    number, record, name, length = target
    value %= 10**length
    assume(value != get_int(DEC, number, record, name))
    result = check(set_field(DEC, number, record, name, value), preetabli=roster())
    assert result.findings.total >= 1


def test_dates_must_be_calendar_dates():
    data = set_field(DEC, 2, "B01", "D_Date_Emission", 20_260_230)  # 30 February
    data = set_field(data, 2, "B01", "D_Date_Exig", 0)
    result = check(data, preetabli=roster())
    invalid = [(a.code, a.line, a.field) for a in result.findings.anomalies]
    assert invalid == [("DATE_INVALIDE", 2, "D_Date_Emission"), ("DATE_INVALIDE", 2, "D_Date_Exig")]
    assert result.status == "rejected"


@FUZZ
@given(st.binary(min_size=1, max_size=3000))
def test_random_bytes_appended_to_a_valid_file(tail):
    # A junk line, or an empty one that is not the last: always rejected. One final empty line
    # (a terminator after B06's) is only a warning.
    result = check(DEC + tail)
    if tail in (b"\n", b"\r\n", b"\r"):
        assert result.status == "accepted"
    else:
        assert result.status == "rejected"


def test_huge_single_line_without_newline():
    data = b"B02" + b"7" * 1_000_000
    result = check(data)
    (length,) = [a for a in result.findings.anomalies if a.code == "LONGUEUR_LIGNE"]
    assert (length.line, length.value) == (1, "1000003")
    assert result.status == "rejected"


def test_huge_line_in_the_middle_of_a_valid_file():
    lines = list(DEC_LINES)
    lines[2] = lines[2] + b" " * 1_000_000
    data = b"".join(line + b"\n" for line in lines)
    result = check(data)
    codes = {(a.code, a.line) for a in result.findings.anomalies}
    assert codes == {("LONGUEUR_LIGNE", 3)}  # the record itself is intact in its 260 columns


def test_many_short_lines():
    check(b"\n" * 50_000)
    check(b"B02\r" * 20_000)


# Parse and validate 20 MB of pathological bytes in a child process whose address space is
# capped: memory must follow the bytes, not the line count (a padded 260-byte row per line
# made 20 MB of empty lines take 15.8 GB). The child's imports take about 0.4 GB of it.
ADDRESS_SPACE = 1_500_000_000
PATHOLOGICAL = {
    "empty-lines": 'b"\\n" * 20_000_000',
    "three-byte-lines": 'b"ab\\n" * 6_666_666',
    "record-types-alone": 'b"B02\\n" * 5_000_000',
    "one-record-then-empty-lines": 'b"B00" + b" " * 257 + b"\\n" * 20_000_000',
    "random-bytes": "np.random.default_rng(1).integers(0, 256, 20_000_000, np.uint8).tobytes()",
    "one-line": 'b"B" * 20_000_000',
}
CHILD = """
import resource, sys
import numpy as np
from transforms.parse import parse
from validators.declaration import validate
raw = eval(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
result = validate(parse(raw))
assert result.status == "rejected"
assert len(result.findings.anomalies) == 1000 or result.findings.total < 1000
print(result.findings.total)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(PATHOLOGICAL))
def test_memory_follows_bytes_not_lines(kind):
    code = CHILD.format(limit=ADDRESS_SPACE)
    done = subprocess.run(
        [sys.executable, "-c", code, PATHOLOGICAL[kind]],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 1
