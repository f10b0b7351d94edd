"""Our sequence Parquet (:data:`hanet.data.arrow.SEQUENCE_SCHEMA`): read and written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from hanet.data.arrow import parquet_bytes, sequences_to_table, table_to_sequences
from hanet.data.schema import SchemaError, Sequence
from hanet.formats.common import ReadError, validated_many
from hanet.io.errors import StorageError
from hanet.io.location import Location
from hanet.io.storage import read_bytes, write_bytes_atomic

__all__ = ["encode_sequence_parquet", "read_sequence_parquet", "write_sequence_parquet"]


def read_sequence_parquet(location: Location, data: bytes | None = None) -> list[Sequence]:
    """Validated sequences from a sequence-Parquet file; ``data``: its content when the
    caller already read it (else it is read here).

    Errors name the file being read (not the source recorded inside it, which may be a file
    the user never gave); each sequence keeps its recorded source, else this file.

    Raises:
        ReadError: unreadable file, another kind or version of file, or a bad sequence.
    """
    where = location.uri
    try:
        # ParquetFile reads the one file directly: read_table goes through the datasets
        # layer, 0.4-0.6 ms more per file (a third of reading a file of a few sequences).
        # One thread: a file of a few tracks decodes faster than it is handed out to Arrow's
        # pool (1.0 against 1.3 ms), and its reader (a refinement actor) has a core or less.
        # An Arrow buffer, not a Python file: Arrow then reads its pages without calling back
        # into Python (0.45 against 0.67 ms for a file of 4 tracks).
        content = read_bytes(location) if data is None else data
        table = pq.ParquetFile(pa.BufferReader(content)).read(use_threads=False)
    except (FileNotFoundError, StorageError):
        raise  # not the file's fault: a missing file, or storage that refused or did not answer
    except Exception as err:  # pyarrow raises several types for a broken file
        raise ReadError(f"{where}: not a readable Parquet file ({err})") from err
    try:
        sequences = table_to_sequences(table, where)
    except SchemaError as err:
        raise ReadError(str(err)) from None
    for seq in sequences:
        seq.source = seq.source or where
    checked = validated_many([(s, f"{where}: sequence {s.sequence_id!r}") for s in sequences])
    for result in checked:
        if isinstance(result, ReadError):
            raise result  # the first bad sequence, as a one-by-one check would
    return checked  # type: ignore[return-value]


def encode_sequence_parquet(sequences: list[Sequence]) -> bytes:
    """Sequences as the bytes of one sequence-Parquet file
    (:func:`hanet.data.arrow.parquet_options`)."""
    return parquet_bytes(sequences_to_table(sequences))


def write_sequence_parquet(location: Location, sequences: list[Sequence]) -> None:
    """Write sequences to one sequence-Parquet file, atomically."""
    write_bytes_atomic(location, encode_sequence_parquet(sequences))
