"""Any supported pose file, by its suffix: which reader reads it, which writer writes it back."""

from __future__ import annotations

from hanet.data.schema import Sequence
from hanet.formats.common import OutputFormatError, ReadError
from hanet.formats.detections import encode_detections_npz, read_detections_npz
from hanet.formats.keypoint_json import encode_keypoint_json, read_keypoint_json
from hanet.formats.parquet import encode_sequence_parquet, read_sequence_parquet
from hanet.io.location import Location

__all__ = ["OUTPUT_FORMATS", "SUPPORTED_SUFFIXES", "encode_as", "read_any"]

SUPPORTED_SUFFIXES = (".parquet", ".npz", ".json")
# "parquet": every output is sequence Parquet; "same": each output in its input's format.
OUTPUT_FORMATS = ("parquet", "same")


def read_any(
    location: Location,
    layout: str,
    representation: str,
    fps: float | None = None,
    image_size: tuple[int, int] | None = None,
    data: bytes | None = None,
) -> list[Sequence]:
    """Sequences from one object of any supported format, chosen by its suffix; ``data``:
    its content when the caller already read it (else the reader reads it).

    Raises:
        ReadError: unsupported suffix, or whatever the format's reader refuses.
    """
    name = location.name.lower()
    if name.endswith(".parquet"):
        return read_sequence_parquet(location, data)
    if name.endswith(".npz"):
        return read_detections_npz(location, layout, representation, fps, image_size, data)
    if name.endswith(".json"):
        if representation != "2D":
            raise ReadError(
                f"{location.uri}: keypoint JSON is 2D, but the model is {representation}"
            )
        return read_keypoint_json(location, layout, fps, image_size, data)
    raise ReadError(f"{location.uri}: unsupported file type (supported: {SUPPORTED_SUFFIXES})")


def encode_as(
    location: Location, refined: list[Sequence], output_format: str, representation: str
) -> bytes:
    """The bytes of the refined object for the input at ``location`` in ``output_format``.

    Raises:
        OutputFormatError: the refined sequences cannot be written back in the input's format.
    """
    suffix = location.suffix.lower()
    if output_format == "parquet" or suffix == ".parquet":
        return encode_sequence_parquet(refined)
    if suffix == ".npz":
        return encode_detections_npz(location, refined, representation)
    if suffix == ".json":
        return encode_keypoint_json(location, refined)
    raise OutputFormatError(f"{location.uri}: no writer for {suffix!r} files")
