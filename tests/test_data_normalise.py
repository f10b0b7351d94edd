"""hanet.data.normalise: gap filling and the per-window maps to model units."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from posedata import seq2d

from hanet.data.normalise import body_size, filled_input, input_norm, root_distance, target_norm
from hanet.data.schema import SchemaError, Sequence, validate_sequence
from hanet.data.windows import split_windows, test_starts


def _windows(seq: Sequence, size: int = 5, step: int = 2):
    starts = test_starts(seq.num_frames, size, step)
    return split_windows(filled_input(seq), starts, size)


def test_body_normalisation_round_trips_and_ignores_where_and_how_big(tmp_path) -> None:
    seq = validate_sequence(seq2d(12))
    raw, valid = _windows(seq)
    norm = input_norm(raw, valid, seq, "body")
    units = norm.apply(raw)
    np.testing.assert_allclose(norm.invert(units), raw, rtol=0, atol=1e-4)
    # Centred on the mean root over the window, and one body size across.
    roots = list(seq.layout.roots)
    np.testing.assert_allclose(units[:, :, roots].mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(body_size(units.astype(np.float64), valid), 1.0, rtol=1e-5)
    # The same person twice as big and elsewhere in the image gives the same model input.
    moved = dataclasses.replace(seq, pred=seq.pred * 2.0 + np.array([100.0, -40.0], np.float32))
    raw2, _ = _windows(moved)
    np.testing.assert_allclose(input_norm(raw2, valid, moved, "body").apply(raw2), units, atol=1e-5)


def test_body_size_is_the_median_extent_and_skips_padding() -> None:
    windows = np.zeros((1, 5, 3, 2))
    windows[0, :, 1, 0] = [4.0, 4.0, 6.0, 100.0, 5.0]  # one outlier frame (index 3)
    valid = np.array([[True, True, True, True, False]])
    assert body_size(windows, valid)[0] == pytest.approx(5.0)  # median of 4, 4, 6, 100
    assert body_size(np.zeros((1, 2, 3, 2)), np.ones((1, 2), bool))[0] > 0  # never zero


def test_published_2d_needs_the_image_size_and_body_does_not() -> None:
    seq = validate_sequence(dataclasses.replace(seq2d(12), image_size=None))
    raw, valid = _windows(seq)
    with pytest.raises(SchemaError, match="needs the image size.*normalisation=body"):
        input_norm(raw, valid, seq, "published")
    assert np.isfinite(input_norm(raw, valid, seq, "body").apply(raw)).all()


def test_published_3d_ground_truth_is_relative_to_its_own_root() -> None:
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(9, 17, 3)).astype(np.float32)
    gt = pred + 0.5  # the same pose, shifted: root-relative, they agree
    seq = validate_sequence(Sequence("s", "h36m17", "3D", pred, gt=gt))
    raw, valid = _windows(seq)
    gt_raw, _ = split_windows(seq.gt, test_starts(9, 5, 2), 5)
    inputs = input_norm(raw, valid, seq, "published")
    targets = target_norm(gt_raw, seq, "published", inputs)
    np.testing.assert_allclose(targets.apply(gt_raw), inputs.apply(raw), atol=1e-5)
    assert target_norm(gt_raw, seq, "body", inputs) is inputs
    smpl = validate_sequence(Sequence("r", "smpl24", "smpl", np.ones((6, 24, 6), np.float32)))
    raw6, valid6 = _windows(smpl)
    np.testing.assert_array_equal(input_norm(raw6, valid6, smpl, "body").apply(raw6), raw6)


def test_maps_in_blocks_give_the_one_pass_float64_values(monkeypatch) -> None:
    import hanet.data.normalise as normalise

    rng = np.random.default_rng(3)
    x = rng.normal(100, 30, size=(37, 5, 4, 2)).astype(np.float32)
    norm = normalise.WindowNorm(rng.uniform(50, 90, size=(37, 2)), rng.normal(size=(37, 5, 2)))
    scale, offset = norm.scale[:, None, None, :], norm.offset[:, :, None, :]
    want = ((x.astype(np.float64) - offset) / scale).astype(np.float32)
    back = want.astype(np.float64) * scale + offset
    # Blocks of 3 windows (not dividing 37) and of all of them give the same values.
    for values in (3 * 5 * 4 * 2, 1 << 18):
        monkeypatch.setattr(normalise, "_BLOCK_VALUES", values)
        np.testing.assert_array_equal(norm.apply(x), want)
        out = np.full(x.shape, np.nan, np.float32)
        assert norm.apply(x, out=out) is out
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(norm.invert(want), back)


def test_root_distance_tells_root_relative_3d_from_camera_space() -> None:
    rng = np.random.default_rng(1)
    pose = rng.normal(scale=0.3, size=(8, 17, 3)).astype(np.float32)
    centred = pose - pose[:, :1]  # h36m17: root joint 0, as the published files store it
    assert root_distance(validate_sequence(Sequence("c", "h36m17", "3D", centred))) < 1e-6
    moved = centred + np.array([0.0, 0.0, 4.0], np.float32)  # 4 m in front of the camera
    moved[5] += [3.0, 0.0, 0.0]  # one frame farther still, its root unobserved
    mask = np.ones((8, 17), dtype=bool)
    mask[5, 0] = False
    seq = validate_sequence(Sequence("m", "h36m17", "3D", moved, joint_mask=mask))
    assert root_distance(seq) == pytest.approx(4.0, abs=1e-5)
    flat = seq2d(frames=8)  # 2D poses are never root-relative: nothing to say
    assert root_distance(flat) == 0.0
