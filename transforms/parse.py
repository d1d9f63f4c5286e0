"""Bytes of an EDI file to numpy columns, one Block per record type, vectorised.

Nothing here judges the file: odd bytes are kept visible (true line lengths, the BOM, the line
endings, non-digit numeric fields flagged) for the validators to report. Parsing never raises
on file content.

Speed matters (a deadline-day peak is a million lines): the usual file, 260 printable
characters and one terminator per line, is recognised with a few whole-buffer reductions and
laid out as a strided view without copying; fields are decoded column-wise and only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import RECORD_LENGTH, Field, data_fields

SPACE, LF, CR, ZERO = 0x20, 0x0A, 0x0D, 0x30
BOM = b"\xef\xbb\xbf"
INT64_MAX = np.iinfo(np.int64).max
SMALL_BLOCK = 8  # lines: below this, fields are decoded one by one (see _decode_few)
GATHER_ROWS = 16_384  # lines laid out per slice on the irregular path (~34 MB of index)


def compact(columns: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a (n, width) slice of lines. Copying each row as one opaque
    item is about twenty times faster than numpy's element-wise strided copy."""
    width = columns.shape[1]
    if width == 0 or columns.shape[0] == 0:
        return np.ascontiguousarray(columns)
    items = np.ascontiguousarray(columns.view(f"V{width}"))
    return items.view(np.uint8).reshape(columns.shape[0], width)


def printable(block: np.ndarray) -> np.ndarray:
    """Bytes outside printable ASCII replaced by '?', so text stays safe for XML and SQL."""
    return np.where((block < SPACE) | (block > 126), ord("?"), block).astype(np.uint8)


@dataclass(frozen=True)
class Lines:
    """The file cut into lines and laid in a (n, 260) byte matrix.

    Shorter lines are padded with spaces and longer ones cut at 260 in `data`; `length` keeps
    the true length so that the validators can report both. `printable_only` is True when it
    is already known that every byte of every line is printable ASCII.
    """

    data: np.ndarray  # uint8 (n, 260)
    length: np.ndarray  # int64 (n,): characters before the line terminator
    has_bom: bool = False
    final_newline: bool = True
    endings: frozenset[str] = frozenset()
    printable_only: bool = False

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
        """Record type of each line as a bytes array (b'B02', …)."""
        return np.ascontiguousarray(printable(self.data[:, :3])).view("S3").ravel()

    @cached_property
    def type_codes(self) -> np.ndarray:
        """Record type of each line packed in an integer (integer compares beat string ones):
        the first four bytes read as one little-endian word, the fourth masked out."""
        head = compact(self.data[:, :4]).view("<u4").ravel()
        return head & np.uint32(0x00FFFFFF)

    def rows_of(self, record: str) -> np.ndarray:
        """0-based indexes of the lines of one record type."""
        return np.flatnonzero(self.type_codes == type_code(record))

    def text(
        self, line_numbers: np.ndarray, start: int = 0, stop: int = RECORD_LENGTH
    ) -> list[str]:
        """Characters [start, stop) of the given 1-based lines, non-printable bytes as '?'."""
        rows = printable(self.data[np.asarray(line_numbers, dtype=np.int64) - 1, start:stop])
        return [bytes(r).decode("ascii") for r in rows]


def type_code(record: str) -> int:
    """The integer that Lines.type_codes holds for a record type."""
    return int.from_bytes(record.encode("ascii"), "little")


def split_lines(raw: bytes) -> Lines:
    """Cut bytes into lines on LF, CRLF or a lone CR; a final terminator is optional."""
    has_bom = raw.startswith(BOM)
    body = raw[len(BOM) :] if has_bom else raw
    buf = np.frombuffer(body, dtype=np.uint8)
    if buf.size == 0:
        return Lines(np.empty((0, RECORD_LENGTH), np.uint8), np.empty(0, np.int64), has_bom)
    regular = _regular_lines(buf)
    if regular is not None:
        return replace(regular, has_bom=has_bom)
    is_lf, is_cr = buf == LF, buf == CR
    lone_cr = is_cr.copy()
    lone_cr[:-1] &= ~is_lf[1:]
    ends = np.flatnonzero(is_lf | lone_cr)  # index of each terminator's last byte
    crlf = is_lf[ends] & (ends > 0) & is_cr[np.maximum(ends - 1, 0)]
    content_end = ends - crlf
    starts = np.concatenate(([0], ends[:-1] + 1))[: ends.size].astype(np.int64)
    final_newline = bool(ends.size > 0 and ends[-1] == buf.size - 1)
    if not final_newline:  # the last line has no terminator: keep it, it may be truncated
        starts = np.append(starts, ends[-1] + 1 if ends.size else 0)
        content_end = np.append(content_end, buf.size)
    length = (content_end - starts).astype(np.int64)
    endings = {"CRLF"} if crlf.any() else set()
    if (~crlf & is_lf[ends]).any():
        endings.add("LF")
    if lone_cr[ends].any():
        endings.add("CR")
    columns = np.arange(RECORD_LENGTH)
    data = np.empty((starts.size, RECORD_LENGTH), np.uint8)
    for lo in range(0, starts.size, GATHER_ROWS):  # the int64 index is 8x the bytes: in slices
        hi = lo + GATHER_ROWS
        index = np.minimum(starts[lo:hi, None] + columns, buf.size - 1)
        data[lo:hi] = np.where(columns < length[lo:hi, None], buf[index], SPACE)
    return Lines(data, length, has_bom, final_newline, frozenset(endings))


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
        if np.count_nonzero(buf < SPACE) != n * len(terminator) or buf.max() > 126:
            return None
        data = np.lib.stride_tricks.as_strided(
            buf, shape=(n, RECORD_LENGTH), strides=(stride, 1), writeable=False
        )
        name = "LF" if terminator == b"\n" else "CRLF"
        length = np.full(n, RECORD_LENGTH, np.int64)
        return Lines(data, length, False, True, frozenset({name}), printable_only=True)
    return None


class Block:
    """The lines of one record type, with field access by name, decoded on first use.

    Numeric fields come back as int64 arrays (0 where the field is not all digits) with a
    validity mask; text fields as raw bytes, or as Arrow strings for loading and display.
    """

    def __init__(self, record: str, lines: Lines) -> None:
        self.record = record
        self.rows = lines.rows_of(record)
        self.line = self.rows + 1
        if len(self.rows) and self.rows[-1] - self.rows[0] + 1 == len(self.rows):
            self.data = lines.data[self.rows[0] : self.rows[-1] + 1]  # consecutive: a view
        else:
            self.data = lines.data[self.rows]
        self.printable_only = lines.printable_only
        self._fields = {f.name: f for f in data_fields(record)}
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.rows)

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


def _decode_numbers(data: np.ndarray, fields: list[Field]) -> dict:
    """Decode every N field of a block at once.

    The digit columns are gathered (fields are in layout order, so runs of adjacent fields
    are copied at once) and transposed, so that Horner's scheme runs over contiguous rows.
    uint8 arithmetic wraps, so `byte - '0' < 10` checks both bounds. 19-digit fields are
    computed in uint64 (they fit) and only valid up to int64's maximum.
    """
    if not fields:
        return {}
    if data.shape[0] <= SMALL_BLOCK:
        return _decode_few(data, fields)
    runs: list[list[int]] = []  # adjacent fields copied together: fewer, longer copies
    for f in fields:
        if runs and runs[-1][1] == f.start:
            runs[-1][1] = f.stop
        else:
            runs.append([f.start, f.stop])
    gathered = np.concatenate([compact(data[:, start:stop]) for start, stop in runs], axis=1)
    digits = np.ascontiguousarray((gathered - np.uint8(ZERO)).T)
    is_digit = digits < 10
    all_valid = bool(is_digit.all())
    decoded, position = {}, 0
    for f in fields:
        rows = digits[position : position + f.length]
        valid = (
            np.ones(data.shape[0], dtype=bool)
            if all_valid
            else is_digit[position : position + f.length].all(axis=0)
        )
        wide = f.length > 18
        values = rows[0].astype(np.uint64 if wide else np.int64)
        for row in rows[1:]:
            values *= 10
            values += row
        if wide:
            valid &= values <= np.uint64(INT64_MAX)
            values = values.astype(np.int64)
        decoded[f.name] = (np.where(valid, values, 0), valid)
        position += f.length
    return decoded


def _decode_few(data: np.ndarray, fields: list[Field]) -> dict:
    """_decode_numbers for the one-line headers and totals, where numpy's fixed cost per call
    outweighs the work: plain int() on each field's bytes."""
    rows = [bytes(row) for row in data]
    decoded = {}
    for f in fields:
        texts = [row[f.start : f.stop] for row in rows]
        valid = np.array([t.isdigit() and int(t) <= INT64_MAX for t in texts], dtype=bool)
        values = [int(t) if ok else 0 for t, ok in zip(texts, valid, strict=True)]
        decoded[f.name] = (np.array(values, dtype=np.int64), valid)
    return decoded


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
