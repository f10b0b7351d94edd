"""What every pose-format reader and writer shares: the error types and the checks that make
every reader's messages look alike."""

from __future__ import annotations

import numpy as np

from hanet.data.folds import trailing_all, trailing_any
from hanet.data.schema import SchemaError, Sequence, implausibility, validate_sequence
from hanet.errors import UserError

__all__ = [
    "OutputFormatError",
    "ReadError",
    "frame_names",
    "missing_joints",
    "validated",
    "validated_many",
]


class ReadError(UserError, ValueError):
    """An input file cannot be read or does not match what it claims to be."""


class OutputFormatError(UserError, ValueError):
    """Refined sequences cannot be written back in an input's own format."""


def validated(seq: Sequence, where: str | None = None, plausibility: bool = True) -> Sequence:
    """validate_sequence, its error as a ReadError that starts with ``where`` (file, sequence
    number and id) when given, so every reader's messages look alike."""
    try:
        return validate_sequence(seq, plausibility=plausibility)
    except SchemaError as err:
        raise _read_error(err, seq, where) from None


def validated_many(items: list[tuple[Sequence, str]]) -> list[Sequence | ReadError]:
    """:func:`validated` of each ``(sequence, where)``, in order, a bad one's error in its
    place; the plausibility checks of all run together
    (:func:`hanet.data.schema.implausibility`), which for a file of many short sequences costs
    a fraction of checking them one by one."""
    out: list[Sequence | ReadError] = []
    for seq, where in items:
        try:
            out.append(validated(seq, where, plausibility=False))
        except ReadError as err:
            out.append(err)
    good = [i for i, result in enumerate(out) if isinstance(result, Sequence)]
    problems = implausibility([out[i] for i in good])  # type: ignore[misc]
    for i, problem in zip(good, problems, strict=True):
        if problem is not None:
            out[i] = _read_error(problem, items[i][0], items[i][1])
    return out


def _read_error(err: SchemaError, seq: Sequence, where: str | None) -> ReadError:
    message = str(err)
    if where is not None and message.startswith(seq.where()):
        message = where + message[len(seq.where()) :]
    return ReadError(message)


def missing_joints(poses: np.ndarray, representation: str) -> np.ndarray:
    """[T, J] True where the estimator marked a joint missing (NaN, or all -1 in 2D)."""
    missing = trailing_any(np.isnan(poses))
    if representation == "2D":
        missing |= trailing_all(poses == -1)
    return missing


def frame_names(entry: np.ndarray | None, frames: int, where: str) -> list[str] | None:
    """Per-frame image names as text, checked against the frame count (None stays None)."""
    if entry is None:
        return None
    # Files written under Python 2 hold bytes; str(b"x") would give "b'x'".
    array = np.asarray(entry).reshape(-1)
    if array.dtype.kind == "U":
        names = array.tolist()  # already text: no per-name conversion
    else:
        names = [
            n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in array.tolist()
        ]
    if len(names) != frames:
        raise ReadError(f"{where}: {len(names)} image names for {frames} frames")
    return names
