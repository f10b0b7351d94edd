"""hanet.formats.safe_npz: npz archives loaded without trusting their pickles."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from posedata import Evil, write_npz

from hanet.formats.common import ReadError
from hanet.formats.safe_npz import UnsafePickleError, load_npz
from hanet.io.location import parse_location


def test_unpickler_refuses_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_npz(tmp_path / "evil.npz", {"joints_2d": [Evil(marker)]})
    with pytest.raises(UnsafePickleError) as info:
        load_npz(parse_location(path))
    message = str(info.value)
    assert "evil.npz[joints_2d]" in message and "refused to unpickle" in message
    assert "system" in message and "only numpy arrays, strings and numbers" in message
    assert not marker.exists()
    # A pickled container of plain values is not an array either.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, np.lib.format.header_data_from_array_1_0(np.empty(1, dtype=object))
    )
    with zipfile.ZipFile(tmp_path / "dict.npz", "w") as archive:
        archive.writestr("imgname.npy", header.getvalue() + pickle.dumps({"a": 1}, protocol=3))
    with pytest.raises(UnsafePickleError, match=r"dict\.npz\[imgname\].*dict, not an array"):
        load_npz(parse_location(tmp_path / "dict.npz"))


def test_unreadable_npz_names_the_file(tmp_path: Path, sample_dir: Path) -> None:
    good = sample_dir / "detected_poses/mocap2d/simplebaseline/mocap2d_simplebaseline_test.npz"
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    for name in ("truncated.npz", "garbage.npz"):
        with pytest.raises(ReadError, match=rf"{name}: not a readable npz archive"):
            load_npz(parse_location(tmp_path / name))
    with pytest.raises(ReadError, match="cannot read"):
        load_npz(parse_location(tmp_path / "absent.npz"))
    # The sample itself loads: object arrays of float arrays and strings pass the allow-list.
    arrays = load_npz(parse_location(good))
    assert arrays["joints_2d"].dtype == object and isinstance(arrays["imgname"][0][0], str)
