"""hanet.formats.detections: an estimator npz on its own, read and written back."""

from __future__ import annotations

from pathlib import Path

import pytest
from posedata import pose_set, write_npz

from hanet.formats.common import ReadError
from hanet.formats.detections import read_detections_npz
from hanet.formats.dispatch import read_any
from hanet.io.location import parse_location


def test_detections_npz_alone_is_inference_input(tmp_path: Path) -> None:
    det = pose_set([6, 4], 15, 2)
    path = write_npz(tmp_path / "video 1.npz", {"joints_2d": det})
    seqs = read_any(parse_location(path), "jhmdb", "2D", 25.0, (640, 480))
    assert [s.sequence_id for s in seqs] == ["video_1_00000", "video_1_00001"]
    assert all(s.split == "infer" and s.gt is None and s.image_size == (640, 480) for s in seqs)
    with pytest.raises(ReadError, match="unsupported file type"):
        read_any(parse_location(tmp_path / "x.csv"), "jhmdb", "2D")
    assert read_detections_npz(parse_location(path), "jhmdb", "2D")[0].fps is None


def test_an_absurd_coordinate_names_file_sequence_frame_and_joint(tmp_path: Path) -> None:
    det = [pose * 100 + 200 for pose in pose_set([30, 30], 15, 2)]
    det[1][21, 2 * 4] = 4e5  # sequence 1, frame 21, joint 4 (l_shoulder), x
    path = write_npz(tmp_path / "cam.npz", {"joints_2d": det})
    with pytest.raises(ReadError) as info:
        read_detections_npz(parse_location(path), "jhmdb", "2D", 30.0, (640, 480))
    assert str(info.value).startswith(
        f"{path}: sequence 1 (cam_00001): poses: frame 21, joint 4 (l_shoulder) at (400000, "
    )
