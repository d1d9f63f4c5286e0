"""Bytes of an EDI file to one Arrow table per record type, vectorised with numpy.

Nothing here judges the file: odd bytes are kept visible (true line lengths, the BOM, the line
endings, non-digit numeric fields as nulls) for the validators to report. Parsing never raises
on file content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas import RECORD_LENGTH, Field, data_fields, record_layouts

SPACE, LF, CR, ZERO = 0x20, 0x0A, 0x0D, 0x30
BOM = b"\xef\xbb\xbf"
INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Lines:
    """The file cut into lines and laid in a (n, 260) byte matrix.

    Shorter lines are padded with spaces and longer ones cut at 260 in `data`; `length` keeps
    the true length so that the validators can report both.
    """

    data: np.ndarray  # uint8 (n, 260)
    length: np.ndarray  # int64 (n,): characters before the line terminator
    has_bom: bool = False
    final_newline: bool = True
    endings: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.length)

    @cached_property
    def record_types(self) -> np.ndarray:
        """Record type of each line as a str array ('B02', …)."""
        head = np.ascontiguousarray(printable(self.data[:, :3])).view("S3").ravel()
        return head.astype("U3")

    def text(
        self, line_numbers: np.ndarray, start: int = 0, stop: int = RECORD_LENGTH
    ) -> list[str]:
        """Characters [start, stop) of the given 1-based lines, non-printable bytes as '?'."""
        rows = printable(self.data[np.asarray(line_numbers, dtype=np.int64) - 1, start:stop])
        return [bytes(r).decode("ascii") for r in rows]


def printable(block: np.ndarray) -> np.ndarray:
    """Bytes outside printable ASCII replaced by '?', so text stays safe for XML and SQL."""
    return np.where((block < SPACE) | (block > 126), ord("?"), block).astype(np.uint8)


def split_lines(raw: bytes) -> Lines:
    """Cut bytes into lines on LF, CRLF or a lone CR; a final terminator is optional."""
    has_bom = raw.startswith(BOM)
    buf = np.frombuffer(raw[len(BOM) :] if has_bom else raw, dtype=np.uint8)
    if buf.size == 0:
        return Lines(np.empty((0, RECORD_LENGTH), np.uint8), np.empty(0, np.int64), has_bom)
    is_lf, is_cr = buf == LF, buf == CR
    lone_cr = is_cr.copy()
    lone_cr[:-1] &= ~is_lf[1:]
    ends = np.flatnonzero(is_lf | lone_cr)  # index of each terminator's last byte
    crlf = is_lf[ends] & (ends > 0) & is_cr[np.maximum(ends - 1, 0)]
    content_end = ends - crlf
    starts = np.concatenate(([0], ends[:-1] + 1))[: ends.size].astype(np.int64)
    final_newline = ends.size > 0 and ends[-1] == buf.size - 1
    if not final_newline:  # the last line has no terminator: keep it, it may be truncated
        starts = np.append(starts, ends[-1] + 1 if ends.size else 0)
        content_end = np.append(content_end, buf.size)
    length = (content_end - starts).astype(np.int64)
    endings = {"CRLF"} if crlf.any() else set()
    if (~crlf & is_lf[ends]).any():
        endings.add("LF")
    if lone_cr[ends].any():
        endings.add("CR")
    return Lines(
        _to_matrix(buf, starts, length), length, has_bom, final_newline, frozenset(endings)
    )


def _to_matrix(buf: np.ndarray, starts: np.ndarray, length: np.ndarray) -> np.ndarray:
    n = starts.size
    if n and (length == RECORD_LENGTH).all():
        stride = int(starts[1] - starts[0]) if n > 1 else RECORD_LENGTH
        if (np.diff(starts) == stride).all():
            # The common case (every line well formed, one terminator): a strided view, no copy.
            return np.lib.stride_tricks.as_strided(
                buf[starts[0] :], shape=(n, RECORD_LENGTH), strides=(stride, 1), writeable=False
            )
    columns = np.arange(RECORD_LENGTH)
    index = np.minimum(starts[:, None] + columns, buf.size - 1)
    return np.where(columns < length[:, None], buf[index], SPACE).astype(np.uint8)


def numeric_field(block: np.ndarray, f: Field) -> tuple[np.ndarray, np.ndarray]:
    """Integer values of an N field and a mask of rows whose field is all digits.

    Horner's scheme over the field's columns, in uint64 so that 19-digit control sums fit;
    a value above int64 can never be a correct figure and is reported as not valid.
    """
    digits = block[:, f.start : f.stop].astype(np.int64) - ZERO
    valid = ((digits >= 0) & (digits <= 9)).all(axis=1)
    digits = np.where(valid[:, None], digits, 0).astype(np.uint64)
    values = np.zeros(len(block), dtype=np.uint64)
    for column in range(f.length):
        values = values * np.uint64(10) + digits[:, column]
    valid &= values <= np.uint64(INT64_MAX)
    return np.where(valid, values, 0).astype(np.int64), valid


def text_field(block: np.ndarray, f: Field) -> pa.Array:
    """An AN field as Arrow strings without trailing spaces (non-printable bytes become '?')."""
    chunk = np.ascontiguousarray(printable(block[:, f.start : f.stop]))
    binary = pa.array(chunk.view(f"S{f.length}").ravel())
    return pc.utf8_rtrim(binary.cast(pa.string()), characters=" ")


def arrow_schema(record: str) -> pa.Schema:
    """Arrow schema of a record's table: the line number, then its data fields."""
    columns = [pa.field("line", pa.int64(), nullable=False)]
    for f in data_fields(record):
        columns.append(pa.field(f.name, pa.int64() if f.numeric else pa.string()))
    return pa.schema(columns)


def record_table(lines: Lines, record: str) -> pa.Table:
    """All lines of one record type as an Arrow table; a non-digit N field is null."""
    rows = np.flatnonzero(lines.record_types == record)
    block = lines.data[rows]
    arrays: list[pa.Array] = [pa.array(rows + 1, pa.int64())]
    for f in data_fields(record):
        if f.numeric:
            values, valid = numeric_field(block, f)
            arrays.append(pa.array(values, pa.int64(), mask=~valid))
        else:
            arrays.append(text_field(block, f))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(record))


@dataclass(frozen=True)
class ParsedFile:
    """A file as lines plus one Arrow table per known record type (empty when absent)."""

    lines: Lines
    tables: dict[str, pa.Table]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, compare=False, repr=False)

    def frame(self, record: str) -> pd.DataFrame:
        """The record's table in pandas, numeric fields as nullable Int64 (never float)."""
        if record not in self._frames:
            self._frames[record] = self.tables[record].to_pandas(
                types_mapper={pa.int64(): pd.Int64Dtype()}.get
            )
        return self._frames[record]


def parse(raw: bytes) -> ParsedFile:
    """Parse an A (préétabli) or B (declaration) file; never raises on content."""
    lines = split_lines(raw)
    return ParsedFile(lines, {record: record_table(lines, record) for record in record_layouts()})
