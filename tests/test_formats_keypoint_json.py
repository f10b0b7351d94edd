"""hanet.formats.keypoint_json: COCO-style keypoint results, one sequence per track."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hanet.evaluation import input_poses
from hanet.formats.common import ReadError
from hanet.formats.dispatch import read_any
from hanet.formats.keypoint_json import read_keypoint_json
from hanet.io.location import parse_location


def _kp(values: list[tuple[float, float, float]]) -> list[float]:
    return [v for triple in values for v in triple]


def test_keypoint_json_tracks_gaps_and_confidence(tmp_path: Path) -> None:
    def person(x: float, conf: float = 0.9) -> list[float]:
        return _kp([(x + j, 100 + j, conf) for j in range(17)])

    zero = person(40)
    zero[3 * 5 + 2] = 0.0  # joint 5 with zero confidence
    detections = [
        {"image_id": 10, "track_id": 1, "keypoints": person(10), "score": 0.9},
        {"image_id": 10, "track_id": 2, "keypoints": person(200), "score": 0.8},
        {"image_id": 11, "track_id": 1, "keypoints": person(11), "score": 0.9},
        # No detection at all in frame 12: a gap that still takes its time step.
        {"image_id": 13, "track_id": 1, "keypoints": zero, "score": 0.7},
        {"image_id": 13, "track_id": 2, "keypoints": person(203), "score": 0.6},
    ]
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(detections))
    one, two = read_keypoint_json(parse_location(path), fps=30.0, image_size=(640, 480))
    assert (one.sequence_id, two.sequence_id) == ("clip_track1", "clip_track2")
    assert one.layout.name == "coco17" and one.frame_names == ["10", "11", "12", "13"]
    assert one.observed().sum(axis=1).tolist() == [17, 17, 0, 16]
    assert two.observed().sum(axis=1).tolist() == [17, 0, 0, 17]
    assert one.confidence[0, 0] == pytest.approx(0.9) and one.confidence[3, 5] == 0.0
    assert one.pred[1, 2].tolist() == [13.0, 102.0] and one.pred[2].max() == 0.0
    assert one.split == "infer" and one.gt is None and one.image_size == (640, 480)
    # Filled in time for the model: frame 12 lies between 11 and 13.
    filled = input_poses(one)
    np.testing.assert_allclose(filled[2, 0], (filled[1, 0] + filled[3, 0]) / 2)


def test_keypoint_json_without_tracks_keeps_best_and_reads_images(tmp_path: Path) -> None:
    document = {
        "images": [{"id": "f0", "width": 320, "height": 240}, {"id": "f1"}],
        "annotations": [
            {"image_id": "f0", "keypoints": _kp([(1, 1, 0.5)] * 15), "score": 0.2},
            {"image_id": "f0", "keypoints": _kp([(2, 2, 0.5)] * 15), "score": 0.9},
            {"image_id": "f1", "keypoints": _kp([(3, 3, 0.5)] * 15), "score": 0.4},
        ],
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(document))
    (seq,) = read_keypoint_json(parse_location(path))
    assert seq.layout.name == "jhmdb" and seq.image_size == (320, 240)
    assert seq.pred[0, 0].tolist() == [2.0, 2.0] and seq.pred[1, 0].tolist() == [3.0, 3.0]
    bad = tmp_path / "bad.json"
    for content, message in [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty list"),
        (json.dumps([{"image_id": 0, "keypoints": [1, 2]}]), "x, y, score triples"),
        (json.dumps([{"image_id": 0, "keypoints": [1, 2, 3] * 16}]), "no joint layout known"),
        (json.dumps([{"image_id": 0, "keypoints": ["a", 2, 3] * 17}]), "numeric"),
    ]:
        bad.write_text(content)
        with pytest.raises(ReadError, match=message):
            read_keypoint_json(parse_location(bad))
    with pytest.raises(ReadError, match="keypoint JSON is 2D"):
        read_any(parse_location(path), "h36m17", "3D")
