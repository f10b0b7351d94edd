"""hanet.data.augment: exact geometry of the training augmentations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hanet.config import AugmentConfig
from hanet.data.augment import augment_batch, crop_batch, start_pad, stored_window_size
from hanet.data.normalise import body_size
from hanet.skeletons import LAYOUTS

JHMDB, H36M = LAYOUTS["jhmdb"], LAYOUTS["h36m17"]


def _batch(rng, size=4, frames=11, joints=15, dims=2, scale=(320.0, 240.0)):
    inputs = rng.normal(0.5, 0.1, size=(size, frames, joints * dims)).astype(np.float32)
    return {
        "input": inputs,
        "target": inputs + rng.normal(0, 0.01, size=inputs.shape).astype(np.float32),
        "target_mask": np.ones(inputs.shape, bool),
        "frame_mask": np.ones((size, frames), bool),
        "key_mask": np.zeros((size, frames), bool),
        "scale": np.tile(np.asarray(scale, np.float32), (size, 1)),
    }


def test_a_mirrored_window_mirrored_back_is_the_original() -> None:
    rng = np.random.default_rng(0)
    batch = _batch(rng)
    batch["target_mask"][0, :, 6:8] = False  # joint 3 (r_shoulder) unlabelled in window 0
    mirror = AugmentConfig(mirror=1.0)
    original = {k: v.copy() for k, v in batch.items()}
    once = augment_batch(batch, 11, JHMDB, "2D", "published", mirror, np.random.default_rng(1))
    for name, value in original.items():  # the caller's batch is never changed
        np.testing.assert_array_equal(batch[name], value)
    # Left and right changed places, and x turned about the window's body centre.
    r_shoulder, l_shoulder = JHMDB.index("r_shoulder"), JHMDB.index("l_shoulder")
    assert not once["target_mask"][0, :, 2 * l_shoulder].any()
    assert once["target_mask"][0, :, 2 * r_shoulder].all()
    np.testing.assert_allclose(
        once["input"][..., 2 * l_shoulder + 1], batch["input"][..., 2 * r_shoulder + 1], atol=1e-6
    )
    twice = augment_batch(once, 11, JHMDB, "2D", "published", mirror, np.random.default_rng(2))
    for name in ("input", "target", "target_mask"):
        np.testing.assert_allclose(twice[name], batch[name], atol=1e-5)


def test_3d_rotations_and_mirrors_keep_bone_lengths_and_jitter_changes_them() -> None:
    rng = np.random.default_rng(3)
    batch = _batch(rng, joints=17, dims=3, scale=(1.0, 1.0, 1.0))
    parent, child = np.array(H36M.bones).T

    def lengths(flat):
        x = flat.reshape(*flat.shape[:2], 17, 3)
        return np.linalg.norm(x[:, :, child] - x[:, :, parent], axis=-1)

    turned = augment_batch(batch, 11, H36M, "3D", "published", AugmentConfig(rotate_deg=180), rng)
    np.testing.assert_allclose(lengths(turned["input"]), lengths(batch["input"]), rtol=1e-4)
    mirrored = augment_batch(batch, 11, H36M, "3D", "published", AugmentConfig(mirror=1.0), rng)
    # A mirror swaps the left and right bones: compare each frame's set of lengths.
    np.testing.assert_allclose(
        np.sort(lengths(mirrored["input"]), -1), np.sort(lengths(batch["input"]), -1), rtol=1e-4
    )
    up = turned["input"].reshape(4, 11, 17, 3)[..., 1]  # rotation about y keeps heights
    np.testing.assert_allclose(up, batch["input"].reshape(4, 11, 17, 3)[..., 1], atol=1e-5)
    jittered = augment_batch(
        batch, 11, H36M, "3D", "published", AugmentConfig(bone_jitter=0.2), rng
    )
    ratio = lengths(jittered["input"]) / lengths(batch["input"])
    assert 0.8 - 1e-4 <= ratio.min() and ratio.max() <= 1.2 + 1e-4 and ratio.std() > 0.01
    np.testing.assert_allclose(ratio[:, 0], ratio[:, -1], rtol=1e-4)  # one factor per window


def test_time_resampling_reads_longer_windows_and_is_seeded() -> None:
    assert stored_window_size(21, AugmentConfig(speed_max=1.25)) == 26
    assert stored_window_size(21, AugmentConfig(speed_min=0.8)) == 21
    rng = np.random.default_rng(4)
    batch = _batch(rng, frames=26)
    batch["input"][:] = np.arange(26, dtype=np.float32)[None, :, None]  # value = frame number
    speed = AugmentConfig(speed_min=0.8, speed_max=1.25)
    a = augment_batch(batch, 21, JHMDB, "2D", "published", speed, np.random.default_rng(5))
    b = augment_batch(batch, 21, JHMDB, "2D", "published", speed, np.random.default_rng(5))
    np.testing.assert_array_equal(a["input"], b["input"])
    steps = np.diff(a["input"][:, :, 0], axis=1)  # constant within a window: its speed
    assert a["input"].shape == (4, 21, 30)
    np.testing.assert_allclose(steps, np.repeat(steps[:, :1], 20, axis=1), atol=1e-4)
    assert 0.8 - 1e-6 <= steps.min() and steps.max() <= 1.25 + 1e-6
    assert a["input"].min() >= 0 and a["input"].max() <= 25
    plain = crop_batch(batch, 21)
    assert plain["input"].shape[1] == 21 and plain["scale"].shape == (4, 2)


def test_body_windows_are_normalised_again_after_augmenting() -> None:
    rng = np.random.default_rng(6)
    batch = _batch(rng, scale=(1.0, 1.0))
    spin = AugmentConfig(rotate_deg=45, mirror=0.5)
    out = augment_batch(batch, 11, JHMDB, "2D", "body", spin, rng)
    x = out["input"].reshape(4, 11, 15, 2).astype(np.float64)
    roots = list(JHMDB.roots)
    np.testing.assert_allclose(x[:, :, roots].mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(body_size(x, out["frame_mask"]), 1.0, rtol=1e-5)


def test_layouts_without_pairs_or_bones_skip_what_needs_them(caplog) -> None:
    bare = dataclasses.replace(H36M, name="bare", bones=(), left_right=())
    rng = np.random.default_rng(7)
    batch = _batch(rng, joints=17, dims=3, scale=(1.0, 1.0, 1.0))
    with caplog.at_level("WARNING"):
        out = augment_batch(
            batch, 11, bare, "3D", "published", AugmentConfig(mirror=1.0, bone_jitter=0.1), rng
        )
        augment_batch(batch, 11, bare, "3D", "published", AugmentConfig(mirror=1.0), rng)
    np.testing.assert_allclose(out["input"], batch["input"], atol=1e-6)
    assert sum("mirroring is off" in r.message for r in caplog.records) == 1  # said once
    assert any("bone-length jitter is off" in r.message for r in caplog.records)


def test_smpl_gets_time_augmentation_only() -> None:
    rng = np.random.default_rng(8)
    batch = _batch(rng, joints=24, dims=6, scale=(1.0,) * 6)
    out = augment_batch(batch, 11, LAYOUTS["smpl24"], "smpl", "body", AugmentConfig(mirror=1), rng)
    np.testing.assert_array_equal(out["input"], batch["input"])


@pytest.mark.parametrize(
    ("change", "key"),
    [({"mirror": 1.5}, "augment.mirror"), ({"speed_min": 1.3, "speed_max": 1.2}, "speed_min")],
)
def test_bad_settings_name_the_key(change, key) -> None:
    from hanet.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=key):
        load_config(None, [f"augment.{k}={v}" for k, v in change.items()])


def test_start_padding_keeps_the_output_frame_real() -> None:
    rng = np.random.default_rng(0)
    batch = _batch(rng, size=200)
    padded = start_pad(batch, 0.5, 3, np.random.default_rng(1))
    pad = (~padded["frame_mask"]).sum(axis=1)
    assert 0.35 < (pad > 0).mean() < 0.65 and pad.max() <= 11 - 1 - 3
    assert padded["frame_mask"][:, 11 - 1 - 3].all()
    for row, m in enumerate(pad):
        # Padding repeats the first real frame and is not supervised; the rest is unchanged.
        np.testing.assert_array_equal(
            padded["input"][row, :m], np.repeat(batch["input"][row, m : m + 1], m, axis=0)
        )
        np.testing.assert_array_equal(padded["input"][row, m:], batch["input"][row, m:])
        assert not padded["target_mask"][row, :m].any()
    assert start_pad(batch, 0.0, 3, rng) is batch
