"""Arrow tables to PostgreSQL's binary COPY format, vectorised, a slice of rows at a time.

Binary COPY spares the server the parsing of every integer as text (the load is bound by the
server's work on two cores), and it is read by COPY as it is produced: `Rows.read` encodes the
next slice when psycopg2 asks for it, so the server stores what was sent while the client
encodes the rest, and memory holds one slice, not the whole table encoded.

Format (PostgreSQL docs, "COPY ... Binary Format"): a header, then per row an int16 field count
and per field an int32 byte length (-1 for NULL) and the value in network byte order; an int16
-1 ends the data. Integers are sent at the exact width of their column (int2/int4/int8): the
server refuses any other.

How a row is built without a Python loop over rows: rows are grouped by which integer fields
are NULL (a declaration has two such groups: préétabli employees, with their AF amounts, and
entrants, whose AF amounts are NULL). Within a group every integer field has a fixed place,
so the integers of all its rows are one numpy structured array; Arrow then joins each row's
fixed part with its length-prefixed texts (`binary_join_element_wise`), and the joined
array's data buffer is the rows, back to back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags (none), header extension (none)
TRAILER = b"\xff\xff"
NULL = -1
# The C library's allocator: it gives these short-lived megabytes back to the system, where
# Arrow's default pool (mimalloc) kept them, one heap per thread (+40 MB peak in `process`).
POOL = pa.system_memory_pool()
SLICE_ROWS = 8_192  # rows encoded per read: under 2 MB, whatever the size of the table


class UnsupportedColumn(TypeError):
    """A column type this encoder does not write (only integers and strings are)."""


def column_order(table: pa.Table) -> list[str]:
    """The order in which `Rows` writes the columns, hence the COPY column list: integers
    first (their fixed part), then texts."""
    integers = [f.name for f in table.schema if pa.types.is_integer(f.type)]
    texts = [f.name for f in table.schema if pa.types.is_string(f.type)]
    if len(integers) + len(texts) != table.num_columns:
        raise UnsupportedColumn("only integer and string columns are written")
    return integers + texts


class Rows:
    """A file-like reader of `table` in binary COPY format, for cursor.copy_expert.

    `widths` gives the byte width (2, 4 or 8) of each integer column's SQL type; 8 by default.
    """

    def __init__(self, table: pa.Table, widths: Mapping[str, int]) -> None:
        self.order = column_order(table)
        self.table = table.select(self.order)
        self.widths = {name: widths.get(name, 8) for name in self.order if _is_int(table, name)}
        self._pieces = self._stream()

    def _stream(self) -> Iterator[bytes]:
        yield HEADER
        for start in range(0, self.table.num_rows, SLICE_ROWS):
            for group in encode_rows(self.table.slice(start, SLICE_ROWS), self.widths):
                yield bytes(group)  # psycopg2 sends bytes objects only
        yield TRAILER

    def read(self, size: int = -1) -> bytes:
        """The next piece of the stream (whatever `size`); b"" at its end."""
        return next(self._pieces, b"")

    readline = read  # psycopg2's file protocol names it; COPY FROM only calls read


def decode_integers(data: bytes, widths: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The columns of a binary COPY TO of NOT NULL integer columns (`widths`, in the order
    selected), as int64 arrays: every row has the same layout, read as one structured array."""
    if not data.startswith(HEADER[:11]):
        raise ValueError("not a binary COPY stream")
    start = 19 + int.from_bytes(data[15:19], "big")  # past the header and its extension
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for name, width in widths.items():
        layout += [(f"{name}.length", ">i4"), (name, f">i{width}")]
    itemsize = np.dtype(layout).itemsize
    size = len(data) - start - len(TRAILER)
    if size % itemsize or not data.endswith(TRAILER):
        raise ValueError("rows are not all of the expected widths (a NULL?)")
    rows = np.frombuffer(data, dtype=layout, offset=start, count=size // itemsize)
    if (rows["count"] != len(widths)).any():
        raise ValueError("rows do not have the expected fields")
    for name, width in widths.items():
        if (rows[f"{name}.length"] != width).any():
            raise ValueError(f"column {name}: a NULL, or not {width} bytes wide")
    return {name: rows[name].astype(np.int64) for name in widths}


def encode_rows(table: pa.Table, widths: Mapping[str, int]) -> list[memoryview]:
    """The binary COPY rows of `table` (columns in column_order), one buffer per group of
    rows with the same NULL integer fields."""
    integers = list(widths)
    texts = table.column_names[len(integers) :]
    nullable = [name for name in integers if table[name].null_count]
    pattern = np.zeros(table.num_rows, np.int64)  # bit i set: nullable[i] is NULL
    for bit, name in enumerate(nullable):
        null = table[name].is_null().to_numpy(zero_copy_only=False)
        pattern |= null.astype(np.int64) << bit
    out = []
    for code in np.unique(pattern).tolist():
        rows = np.flatnonzero(pattern == code)
        if rows[-1] - rows[0] + 1 == len(rows):  # consecutive (B02 lines, then entrants)
            group = table.slice(rows[0], len(rows))
        else:
            group = pc.take(table, pa.array(rows), memory_pool=POOL)
        null = {name for bit, name in enumerate(nullable) if code >> bit & 1}
        out.append(_group(group, widths, texts, null))
    return out


def _group(
    table: pa.Table, widths: Mapping[str, int], texts: list[str], null: set[str]
) -> memoryview:
    """Rows that share their NULL integer fields: a fixed part, then the texts."""
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for name, width in widths.items():
        layout.append((f"{name}.length", ">i4"))
        if name not in null:
            layout.append((name, f">i{width}"))
    template = np.zeros((), dtype=layout)  # the field count and lengths, the same on every row
    template["count"] = table.num_columns
    for name, width in widths.items():
        template[f"{name}.length"] = NULL if name in null else width
    fixed = np.empty(table.num_rows, dtype=layout)
    fixed[...] = template
    for name, width in widths.items():
        if name not in null:
            fixed[name] = _fitting(table[name].to_numpy(), width, name)
    parts: list[pa.Array] = [_binary(fixed.view(np.uint8).reshape(table.num_rows, -1))]
    for name in texts:
        text = table[name].combine_chunks(POOL)
        offsets = np.frombuffer(text.buffers()[1], np.int32, len(text) + 1, text.offset * 4)
        length = np.diff(offsets).astype(">i4")
        if text.null_count:
            length[text.is_null().to_numpy(zero_copy_only=False)] = NULL
        data = pa.Array.from_buffers(pa.binary(), len(text), text.buffers(), offset=text.offset)
        parts += [_binary(length.view(np.uint8).reshape(-1, 4)), data]
    # A NULL text adds no byte (its length says -1): "skip" joins it as nothing.
    joined = pc.binary_join_element_wise(*parts, b"", null_handling="skip", memory_pool=POOL)
    offsets = np.frombuffer(joined.buffers()[1], np.int32, len(joined) + 1, joined.offset * 4)
    return memoryview(joined.buffers()[2])[offsets[0] : offsets[-1]]


def _fitting(values: np.ndarray, width: int, name: str) -> np.ndarray:
    """The values, once sure that they fit the column's width (numpy would wrap them)."""
    limit = 2 ** (8 * width - 1)
    if width < 8 and len(values) and (values.min() < -limit or values.max() >= limit):
        raise OverflowError(f"column {name}: a value does not fit in {width} bytes")
    return values


def _binary(matrix: np.ndarray) -> pa.Array:
    """Each row of a (n, k) uint8 matrix as one binary value (no copy until the join)."""
    n, k = matrix.shape
    offsets = pa.py_buffer(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(matrix)])


def _is_int(table: pa.Table, name: str) -> bool:
    return pa.types.is_integer(table.schema.field(name).type)
