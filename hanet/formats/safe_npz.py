"""Loading ``.npz`` archives without trusting their pickles.

The published files keep one object-array entry per sequence, which numpy can only store as a
pickle. Unpickling an untrusted file can run code, so :func:`load_npz` parses the archive itself
and unpickles with an allow-list of numpy array reconstruction, strings and numbers.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np

from hanet.formats.common import ReadError
from hanet.io.errors import StorageError
from hanet.io.location import Location
from hanet.io.storage import open_input, read_bytes

__all__ = ["UnsafePickleError", "load_npz", "npz_shapes"]

# Safe npz loading


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(ReadError):
    """The file's pickle asks for something other than numpy arrays, strings and numbers."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, where: str) -> None:
        super().__init__(file, encoding="latin1")
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._where}: refused to unpickle {module}.{name}; only numpy arrays, strings and "
            "numbers are allowed in a pose file"
        )


_PLAIN_TYPES = {str, bytes, int, float, type(None)}


def _check_plain(value: Any, where: str) -> None:
    """After unpickling, only arrays of numbers or strings (possibly nested) may remain."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            # Mostly one type throughout (every frame's image name a str): one look per type,
            # not a call per element; only containers are opened.
            kinds = set(map(type, value.flat))
            if kinds <= _PLAIN_TYPES:
                return
            for item in value.flat:
                _check_plain(item, where)
        return
    if isinstance(value, (str, bytes, int, float, np.generic)) or value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
        return
    raise UnsafePickleError(f"{where}: unexpected {type(value).__name__} inside an object array")


def load_npz(location: Location, data: bytes | None = None) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without trusting its pickles; ``data``: its content
    when the caller already read it (else it is read here).

    Raises:
        ReadError: unreadable or truncated archive, or a member that is not an array.
        UnsafePickleError: a pickle that asks for anything beyond numpy arrays and plain values.
    """
    where = location.uri
    try:
        data = read_bytes(location) if data is None else data
    except StorageError:
        raise  # not the file's fault: storage that refused or did not answer
    except (OSError, FileNotFoundError) as err:
        raise ReadError(f"{where}: cannot read ({err})") from err
    arrays: dict[str, np.ndarray] = {}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.namelist()
        for member in members:
            key = member[:-4] if member.endswith(".npy") else member
            arrays[key] = _load_npy(archive.read(member), f"{where}[{key}]")
    except UnsafePickleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as err:
        raise ReadError(f"{where}: not a readable npz archive ({err})") from err
    if not arrays:
        raise ReadError(f"{where}: the npz archive holds no arrays")
    return arrays


def _header(stream: Any, where: str) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:  # pragma: no cover - numpy writes only these
        raise ReadError(f"{where}: unsupported .npy version {version}")
    return tuple(shape), dtype


def npz_shapes(location: Location) -> dict[str, tuple[int, ...]]:
    """The shape of every array of an ``.npz``, from the member headers alone (ranged reads on
    S3: the data itself is not transferred); how many sequences a published file holds.

    Raises:
        ReadError: unreadable or truncated archive.
    """
    where = location.uri
    try:
        with open_input(location) as reader, zipfile.ZipFile(reader) as archive:
            shapes = {}
            for member in archive.namelist():
                with archive.open(member) as stream:
                    key = member[:-4] if member.endswith(".npy") else member
                    shapes[key] = _header(stream, f"{where}[{key}]")[0]
            return shapes
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as err:
        raise ReadError(f"{where}: not a readable npz archive ({err})") from err


def _load_npy(raw: bytes, where: str) -> np.ndarray:
    stream = io.BytesIO(raw)
    shape, dtype = _header(stream, where)
    if not dtype.hasobject:
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    try:
        value = _RestrictedUnpickler(stream, where).load()
    except UnsafePickleError:
        raise
    except Exception as err:  # a broken pickle stream raises many types
        raise ReadError(f"{where}: corrupt object array ({type(err).__name__}: {err})") from err
    if not isinstance(value, np.ndarray):
        raise UnsafePickleError(f"{where}: the pickle holds a {type(value).__name__}, not an array")
    _check_plain(value, where)
    if value.shape != tuple(shape):
        raise ReadError(f"{where}: array shape {value.shape} differs from its header {shape}")
    return value
