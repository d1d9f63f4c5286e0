"""Bytes of an EDI file to numpy columns, one Block per record type, vectorised.

Nothing here judges the file: odd bytes are kept visible (true line lengths, the BOM, the line
endings, the first non-printable byte of each line, non-digit numeric fields flagged) for the
validators to report. Parsing never raises on file content.

Speed matters (a deadline-day peak is a million lines): the usual file, 260 printable
characters and one terminator per line, is recognised with a few whole-buffer reductions and
laid out as a strided view without copying; fields are decoded column-wise and only when asked.

Memory follows the bytes, not the line count: per line only a few integers are kept (start,
length, record type, first odd byte), and a padded 260-byte row only for lines of at least
half a record, so that 20 MB of empty lines cost about as much as 20 MB of records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import RECORD_LENGTH, Field, data_fields, record_type_field

SPACE, LF, CR, ZERO = 0x20, 0x0A, 0x0D, 0x30
BOM = b"\xef\xbb\xbf"
INT64_MAX = np.iinfo(np.int64).max
SMALL_BLOCK = 8  # lines: below this, fields are decoded one by one (see _decode_few)
DECODE_ROWS = 4096  # rows decoded per slice (see _decode_numbers)
GATHER_ROWS = 16_384  # lines laid out per slice on the irregular path (~34 MB of index)
SCAN_BYTES = 1 << 22  # bytes per slice when listing positions (an int64 index is 8x them)
# A line shorter than this keeps no padded row, so its fields are not read: it is reported for
# its length, its characters and its record type only. A row then costs at most twice the
# bytes it comes from, whatever the mix of line lengths.
SHORTEST_ROW = RECORD_LENGTH // 2
TYPE_WIDTH = record_type_field().length


def compact(columns: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a (n, width) slice of lines. Copying each row as one opaque
    item is about twenty times faster than numpy's element-wise strided copy."""
    width = columns.shape[1]
    if width == 0 or columns.shape[0] == 0:
        return np.ascontiguousarray(columns)
    # A void dtype of `width` bytes makes each row a single item: one memcpy per row.
    items = np.ascontiguousarray(columns.view(f"V{width}"))
    return items.view(np.uint8).reshape(columns.shape[0], width)


def printable(block: np.ndarray) -> np.ndarray:
    """Bytes outside printable ASCII replaced by '?', so text stays safe for XML and SQL."""
    return np.where((block < SPACE) | (block > 126), ord("?"), block).astype(np.uint8)


def odd_bytes(block: np.ndarray) -> np.ndarray:
    """Per byte: is it outside printable ASCII (a control byte, DEL or above)?"""
    return (block < SPACE) | (block > 126)


@dataclass(frozen=True)
class Lines:
    """The file cut into lines.

    Per line: `length` (characters before its terminator, the true one) and `type_codes` (its
    record type packed in an integer). `rows` holds the lines of at least SHORTEST_ROW
    characters as a (m, 260) byte matrix, shorter ones padded with spaces and longer ones cut
    at 260; `row_lines` gives each row's 0-based line index. `odd_column` is, per line, the
    1-based column of its first byte outside printable ASCII within 260, 0 if none; it is
    None when `printable_only` says that every byte of every line is printable ASCII.
    """

    buf: np.ndarray  # uint8: the bytes after any BOM, terminators included
    starts: np.ndarray  # per line: offset of its first byte in `buf`
    length: np.ndarray  # per line: int32 (int64 past 2 GiB)
    type_codes: np.ndarray  # per line: uint32, see type_code()
    rows: np.ndarray  # uint8 (m, 260)
    row_lines: np.ndarray  # int64 (m,), ascending
    has_bom: bool = False
    final_newline: bool = True
    endings: frozenset[str] = frozenset()
    printable_only: bool = False
    odd_column: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.length)

    @property
    def ends_with_empty_line(self) -> bool:
        """The last line is empty and follows another: a stray final terminator, which
        edi_format.md §3 recommends tolerating. The line stays counted and visible."""
        return self.count > 1 and self.final_newline and bool(self.length[-1] == 0)

    @cached_property
    def record_types(self) -> np.ndarray:
        """Record type of each line as a bytes array (b'B02', …), non-printable bytes as '?'."""
        head = self.type_codes.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :TYPE_WIDTH]
        return np.ascontiguousarray(printable(head)).view(f"S{TYPE_WIDTH}").ravel()

    @cached_property
    def row_codes(self) -> np.ndarray:
        """type_codes of the lines that have a row, in row order."""
        if len(self.row_lines) == self.count:  # every line has its row: no gather needed
            return self.type_codes
        return self.type_codes[self.row_lines]

    def text(
        self, line_numbers: np.ndarray, start: int = 0, stop: int = RECORD_LENGTH
    ) -> list[str]:
        """Characters [start, stop) of the given 1-based lines (spaces past a line's end),
        non-printable bytes as '?'. Read from the bytes, so short lines have text too."""
        out = []
        for number in np.asarray(line_numbers, dtype=np.int64).tolist():
            first = int(self.starts[number - 1])
            end = first + min(int(self.length[number - 1]), stop)
            chunk = self.buf[min(first + start, end) : end]
            padded = printable(chunk).tobytes().ljust(stop - start)
            out.append(padded.decode("ascii"))
        return out


def type_code(record: str) -> int:
    """The integer that Lines.type_codes holds for a record type: its bytes, little-endian."""
    return int.from_bytes(record.encode("ascii"), "little")


def split_lines(raw: bytes) -> Lines:
    """Cut bytes into lines on LF, CRLF or a lone CR; a final terminator is optional."""
    has_bom = raw.startswith(BOM)
    # A view past the BOM: slicing the bytes object would copy the whole file.
    buf = np.frombuffer(raw, dtype=np.uint8)[len(BOM) if has_bom else 0 :]
    if buf.size == 0:
        return _no_lines(buf, has_bom)
    regular = _regular_lines(buf)
    if regular is not None:
        return replace(regular, has_bom=has_bom)
    return _irregular_lines(buf, has_bom)


def _no_lines(buf: np.ndarray, has_bom: bool) -> Lines:
    none = np.empty(0, np.int64)
    rows = np.empty((0, RECORD_LENGTH), np.uint8)
    return Lines(buf, none, none, np.empty(0, np.uint32), rows, none, has_bom)


def _regular_lines(buf: np.ndarray) -> Lines | None:
    """The usual file: every line 260 printable characters, then LF (or CRLF), final one
    included. Proved with reductions over the buffer: the terminators sit exactly where
    expected, and the buffer holds no other byte below space or above '~'."""
    for terminator in (b"\n", b"\r\n"):
        stride = RECORD_LENGTH + len(terminator)
        n = buf.size // stride
        if n == 0 or buf.size != n * stride:
            continue
        if any(
            (buf[stride - len(terminator) + i :: stride] != byte).any()
            for i, byte in enumerate(terminator)
        ):
            continue
        # Row i starts stride bytes after row i-1: a (n, 260) view of the buffer, no copy.
        rows = np.lib.stride_tricks.as_strided(
            buf, shape=(n, RECORD_LENGTH), strides=(stride, 1), writeable=False
        )
        # The rows hold every byte but the terminators: two reductions, no temporary array.
        if rows.min() < SPACE or rows.max() > 126:
            return None
        name = "LF" if terminator == b"\n" else "CRLF"
        every = np.arange(n, dtype=np.int64)
        starts, length = every * stride, np.full(n, RECORD_LENGTH, _index_dtype(buf.size))
        head = np.zeros((n, 4), np.uint8)  # each line's record type, as _type_codes packs it
        head[:, :TYPE_WIDTH] = rows[:, :TYPE_WIDTH]
        codes = head.view("<u4").ravel()
        return Lines(buf, starts, length, codes, rows, every, False, True, frozenset({name}), True)
    return None


def _irregular_lines(buf: np.ndarray, has_bom: bool) -> Lines:
    """Any other file: terminators found by position, every line's bounds kept as integers,
    padded rows only for the lines long enough to hold a record's fields."""
    is_lf = buf == LF
    lone_cr = buf == CR
    lone_cr[:-1] &= ~is_lf[1:]  # a CR followed by LF belongs to a CRLF
    ends = _positions(is_lf | lone_cr, _index_dtype(buf.size))  # each terminator's last byte
    lf_ends = is_lf[ends]
    crlf = lf_ends & (ends > 0) & (buf[np.maximum(ends, 1) - 1] == CR)
    endings = {"CRLF"} if crlf.any() else set()
    if (~crlf & lf_ends).any():
        endings.add("LF")
    if (~lf_ends).any():
        endings.add("CR")
    del is_lf, lone_cr, lf_ends
    final_newline = bool(ends.size > 0 and ends[-1] == buf.size - 1)
    lines = ends.size + (not final_newline)  # the last line may have no terminator
    starts = np.zeros(lines, ends.dtype)
    starts[1:] = ends[: lines - 1] + 1
    length = np.empty(lines, ends.dtype)
    length[: ends.size] = ends - starts[: ends.size] - crlf
    if not final_newline:  # kept, it may be truncated
        length[-1] = buf.size - starts[-1]
    del ends
    odd_total = np.count_nonzero(buf < SPACE) + np.count_nonzero(buf > 126)
    terminator_bytes = lines - (not final_newline) + int(crlf.sum())
    printable_only = odd_total == terminator_bytes  # only the terminators are odd
    row_lines = np.flatnonzero(length >= SHORTEST_ROW)
    return Lines(
        buf,
        starts,
        length,
        _type_codes(buf, starts, length),
        _padded_rows(buf, starts[row_lines], length[row_lines]),
        row_lines,
        has_bom,
        final_newline,
        frozenset(endings),
        printable_only,
        None if printable_only else _first_odd_columns(buf, starts, length),
    )


def _index_dtype(size: int) -> type[np.signedinteger]:
    """int32 offsets while the buffer allows: half the memory of int64 per line."""
    return np.int32 if size < 2**31 else np.int64


def _positions(mask: np.ndarray, dtype: type[np.signedinteger]) -> np.ndarray:
    """np.flatnonzero(mask) in `dtype`, listed a slice at a time: flatnonzero returns int64,
    eight bytes per hit, and a file of empty lines is all hits."""
    out = np.empty(np.count_nonzero(mask), dtype)
    filled = 0
    for lo in range(0, mask.size, SCAN_BYTES):
        at = np.flatnonzero(mask[lo : lo + SCAN_BYTES])
        out[filled : filled + at.size] = at + lo
        filled += at.size
    return out


def _type_codes(buf: np.ndarray, starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Per line, its first TYPE_WIDTH bytes (spaces past its end) as one little-endian
    integer: integer compares beat string ones, and four bytes per line is all it costs."""
    codes = np.empty(len(length), np.uint32)
    for lo in range(0, len(length), SCAN_BYTES):  # in slices: the index is as long as the slice
        first, size = starts[lo : lo + SCAN_BYTES], length[lo : lo + SCAN_BYTES]
        code = np.zeros(len(size), np.uint32)
        for i in range(TYPE_WIDTH):
            byte = np.where(size > i, buf[np.minimum(first + i, buf.size - 1)], SPACE)
            code |= byte.astype(np.uint32) << np.uint32(8 * i)
        codes[lo : lo + SCAN_BYTES] = code
    return codes


def _padded_rows(buf: np.ndarray, starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(len(starts), 260) matrix of the given lines: padded with spaces, cut at 260."""
    columns = np.arange(RECORD_LENGTH)
    rows = np.empty((len(starts), RECORD_LENGTH), np.uint8)
    for lo in range(0, len(starts), GATHER_ROWS):  # the int64 index is 8x the bytes: in slices
        hi = lo + GATHER_ROWS
        index = np.minimum(starts[lo:hi, None].astype(np.int64) + columns, buf.size - 1)
        rows[lo:hi] = np.where(columns < length[lo:hi, None], buf[index], SPACE)
    return rows


def _first_odd_columns(buf: np.ndarray, starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Per line, the 1-based column of its first byte outside printable ASCII within its first
    260 characters, 0 if none. Odd bytes are listed a slice of the buffer at a time and each
    is assigned to its line by binary search over the line starts."""
    first = np.zeros(len(length), np.int16)
    for lo in range(0, buf.size, SCAN_BYTES):
        at = np.flatnonzero(odd_bytes(buf[lo : lo + SCAN_BYTES])) + lo
        line = np.searchsorted(starts, at, side="right") - 1
        column = at - starts[line]
        # Terminators are odd too, but they sit at or past the line's length.
        inside = column < np.minimum(length[line], RECORD_LENGTH)
        line, column = line[inside], column[inside]
        # Positions ascend, so lines do: the first of each run is that line's first odd byte.
        leads = np.ones(line.size, dtype=bool)
        leads[1:] = line[1:] != line[:-1]
        line, column = line[leads], column[leads]
        unset = first[line] == 0  # a line may straddle slices: the earlier slice wins
        first[line[unset]] = column[unset] + 1
    return first


class Block:
    """The lines of one record type, with field access by name, decoded on first use.

    Numeric fields come back as int64 arrays (0 where the field is not all digits) with a
    validity mask; text fields as raw bytes, or as Arrow strings for loading and display.
    Only lines with a row (at least SHORTEST_ROW characters) are in a block.
    """

    def __init__(self, record: str, lines: Lines) -> None:
        self.record = record
        at = np.flatnonzero(lines.row_codes == type_code(record))
        self.line = lines.row_lines[at] + 1
        if len(at) and at[-1] - at[0] + 1 == len(at):
            self.data = lines.rows[at[0] : at[-1] + 1]  # consecutive: a view
        else:
            self.data = lines.rows[at]
        self.printable_only = lines.printable_only
        self._fields = {f.name: f for f in data_fields(record)}
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.line)

    def number(self, name: str) -> np.ndarray:
        return self._decoded()[name][0]

    def valid(self, name: str) -> np.ndarray:
        return self._decoded()[name][1]

    def raw(self, name: str) -> np.ndarray:
        f = self._fields[name]
        return self.data[:, f.start : f.stop]

    def packed(self, name: str) -> np.ndarray:
        """The field's bytes as a C-contiguous (n, width) array."""
        return compact(self.raw(name))

    def blank(self, name: str) -> np.ndarray:
        return (self.raw(name) == SPACE).all(axis=1)

    def equals(self, name: str, text: str) -> np.ndarray:
        """Per line: is the field exactly `text`, space-padded to the field's width?"""
        f = self._fields[name]
        expected = np.frombuffer(text.encode("ascii").ljust(f.length), dtype=np.uint8)
        return (self.raw(name) == expected).all(axis=1)

    def strings(self, name: str) -> pa.Array:
        """A text field as Arrow strings without trailing spaces."""
        f = self._fields[name]
        raw = self.raw(name)
        chunk = compact(raw) if self.printable_only else printable(raw)
        offsets = np.arange(0, (len(self) + 1) * f.length, f.length, dtype=np.int32)
        strings = pa.StringArray.from_buffers(len(self), pa.py_buffer(offsets), pa.py_buffer(chunk))
        return pc.utf8_rtrim(strings, characters=" ")

    def _decoded(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._numbers is None:
            self._numbers = _decode_numbers(
                self.data, [f for f in self._fields.values() if f.numeric]
            )
        return self._numbers


@dataclass(frozen=True)
class _DigitLayout:
    """Where a block's numeric fields sit once their digits are gathered side by side."""

    runs: tuple[tuple[int, int], ...]  # adjacent fields, copied together: fewer, longer copies
    starts: np.ndarray  # per field: its first digit among the gathered ones
    weights: np.ndarray  # uint64 per digit: 10 ** (its distance from its field's end)
    wide: np.ndarray  # per field: 19 digits, may pass int64's maximum


@lru_cache(maxsize=64)
def _digit_layout(fields: tuple[Field, ...]) -> _DigitLayout:
    runs: list[tuple[int, int]] = []
    for f in fields:
        if runs and runs[-1][1] == f.start:
            runs[-1] = (runs[-1][0], f.stop)
        else:
            runs.append((f.start, f.stop))
    weights = [10**power for f in fields for power in range(f.length - 1, -1, -1)]
    starts = np.cumsum([0] + [f.length for f in fields[:-1]])
    return _DigitLayout(
        tuple(runs),
        starts,
        np.array(weights, dtype=np.uint64),
        np.array([f.length > 18 for f in fields]),
    )


def _decode_numbers(data: np.ndarray, fields: list[Field]) -> dict:
    """Decode every N field of a block at once, a few calls per slice of rows whatever the
    number of fields (a block's fixed cost is what small files pay for).

    The digit columns are gathered, each digit is weighted by its power of ten, and one
    `add.reduceat` sums every field of every row. uint8 arithmetic wraps (a byte below '0'
    becomes 246..255), so `byte - '0' < 10` checks both bounds at once; a field with another
    byte decodes to 0 and is not valid. Products are uint64, where 19 nines fit; a 19-digit
    field is only valid up to int64's maximum.
    """
    if not fields:
        return {}
    if data.shape[0] <= SMALL_BLOCK:
        return _decode_few(data, fields)
    layout = _digit_layout(tuple(fields))
    n = data.shape[0]
    values = np.empty((len(fields), n), np.uint64)  # one row per field: contiguous columns
    valid = np.ones((len(fields), n), dtype=bool)
    all_valid = True
    for lo in range(0, n, DECODE_ROWS):  # in slices: the uint64 products stay a few MB
        rows = data[lo : lo + DECODE_ROWS]
        digits = np.concatenate([compact(rows[:, a:b]) for a, b in layout.runs], axis=1)
        digits -= np.uint8(ZERO)
        values[:, lo : lo + len(rows)] = np.add.reduceat(
            digits * layout.weights, layout.starts, axis=1
        ).T
        is_digit = digits < 10
        if not is_digit.all():
            all_valid = False
            digit_fields = np.logical_and.reduceat(is_digit, layout.starts, axis=1)
            valid[:, lo : lo + len(rows)] = digit_fields.T
    if layout.wide.any():
        valid[layout.wide] &= values[layout.wide] <= np.uint64(INT64_MAX)
        all_valid = all_valid and bool(valid[layout.wide].all())
    numbers = values.view(np.int64) if all_valid else np.where(valid, values, 0).view(np.int64)
    return {f.name: (numbers[i], valid[i]) for i, f in enumerate(fields)}


def _decode_few(data: np.ndarray, fields: list[Field]) -> dict:
    """_decode_numbers for the one-line headers and totals, where numpy's fixed cost per call
    outweighs the work: plain int() on each field's bytes, two arrays for the whole block."""
    rows = [bytes(row) for row in data]
    texts = [[row[f.start : f.stop] for row in rows] for f in fields]
    valid = [[t.isdigit() and int(t) <= INT64_MAX for t in column] for column in texts]
    values = [
        [int(t) if ok else 0 for t, ok in zip(column, oks, strict=True)]
        for column, oks in zip(texts, valid, strict=True)
    ]
    numbers = np.array(values, dtype=np.int64).reshape(len(fields), len(rows))
    digits = np.array(valid, dtype=bool).reshape(len(fields), len(rows))
    return {f.name: (numbers[i], digits[i]) for i, f in enumerate(fields)}


class ParsedFile:
    """A file as lines, with per record type a Block (numpy columns), built on first use."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self._blocks: dict[str, Block] = {}

    def block(self, record: str) -> Block:
        if record not in self._blocks:
            self._blocks[record] = Block(record, self.lines)
        return self._blocks[record]


def parse(raw: bytes) -> ParsedFile:
    """Parse an A (préétabli) or B (declaration) file; never raises on content."""
    return ParsedFile(split_lines(raw))
