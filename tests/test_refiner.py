"""hanet.refiner: the same refinement whatever the batching, arithmetic or compilation, and on
a GPU when there is one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hanet.data.normalise import filled_input, input_norm
from hanet.data.windows import split_windows, test_starts, window_measures
from hanet.refiner import Refiner


def _windows(refiner: Refiner, sequences) -> np.ndarray:
    return np.concatenate([refiner.cut(seq).windows for seq in sequences])


def test_sequences_refined_together_equal_one_at_a_time(refiner: Refiner, sample_sequences):
    together = refiner.refine_many(sample_sequences)
    for seq, got in zip(sample_sequences, together):
        np.testing.assert_allclose(got.pred, refiner.refine(seq).pred, atol=1e-5)
        assert got.pred.shape == seq.pred.shape and got.pred.dtype == np.float32


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.normalisation=published"],
        ["refine.window_step=3", "refine.smooth_sigma=1.5", "refine.merge_weights=uniform"],
        ["refine.lookahead=2"],
    ],
)
def test_sequences_cut_and_merged_joined_equal_each_on_its_own(
    refiner: Refiner, sample_sequences, overrides
):
    """One gather and one merge for many sequences: the same numbers, bit for bit, as one
    sequence at a time (a clip shorter than a window and another image size included)."""
    joined = Refiner(refiner.model, refiner.config.replace(overrides), "cpu")
    clip = sample_sequences[1]
    per_frame = ("pred", "gt", "gt_mask", "gt_joint_mask", "joint_mask", "confidence", "bbox")
    short = dataclasses.replace(
        clip,
        frame_names=None,
        **{k: getattr(clip, k)[:7] for k in per_frame if getattr(clip, k) is not None},
    )
    wide = dataclasses.replace(sample_sequences[2], image_size=(640, 480))
    sequences = [sample_sequences[0], short, wide, *sample_sequences[3:]]
    cut = joined.cut_many(sequences)
    alone = [joined.cut(seq) for seq in sequences]
    np.testing.assert_array_equal(cut.windows, np.concatenate([c.windows for c in alone]))
    assert cut.counts.tolist() == [len(c.starts) for c in alone]
    if joined.config.refine.lookahead is None:  # each as the per-sequence functions cut it
        size, step = joined.config.model.window_size, joined.config.test_window_step()
        for seq, one in zip(sequences, alone):
            starts = test_starts(seq.num_frames, size, step)
            filled = filled_input(seq)
            raw, valid = split_windows(filled, starts, size)
            measures = window_measures(filled, seq.layout, starts, size)
            norm = input_norm(raw, valid, seq, joined.config.data.normalisation, measures)
            np.testing.assert_array_equal(one.windows, norm.apply(raw).reshape(one.windows.shape))
    outputs = joined.run_windows(cut.windows)
    merged = joined.merge_many(sequences, cut, outputs)
    ends = np.cumsum(cut.counts)
    for seq, one, pred, end, count in zip(sequences, alone, merged, ends, cut.counts):
        np.testing.assert_array_equal(pred, joined.merge(seq, one, outputs[end - count : end]))
        assert pred.shape == seq.pred.shape and pred.dtype == np.float32
    assert joined.merge_many([], joined.cut_many([]), outputs[:0]) == []


def test_batches_of_any_size_give_the_same_windows(refiner: Refiner, sample_sequences):
    windows = _windows(refiner, sample_sequences)
    small = Refiner(refiner.model, refiner.config.replace(["refine.batch_windows=3"]), "cpu")
    assert len(windows) > 3 * 4
    np.testing.assert_allclose(small.run_windows(windows), refiner.run_windows(windows), atol=1e-5)


def test_bf16_arithmetic_stays_within_bf16_precision(refiner: Refiner, sample_sequences):
    windows = _windows(refiner, sample_sequences)
    full = refiner.run_windows(windows)
    half = Refiner(refiner.model, refiner.config.replace(["refine.precision=bf16"]), "cpu")
    assert half.bf16 and not refiner.bf16  # "auto" is float32 on a CPU
    got = half.run_windows(windows)
    assert got.dtype == np.float32
    # bf16 keeps 8 bits of mantissa: errors of a few parts in a thousand of the values' scale.
    scale = np.abs(full).max()
    assert np.abs(got - full).max() <= 0.02 * scale
    assert not np.array_equal(got, full)  # the setting really changed the arithmetic


def test_smoothing_is_a_gaussian_over_time_of_the_merged_poses(refiner: Refiner, sample_sequences):
    seq = sample_sequences[0]
    smooth = Refiner(refiner.model, refiner.config.replace(["refine.smooth_sigma=1.5"]), "cpu")
    plain, got = refiner.refine(seq).pred, smooth.refine(seq).pred
    # Independently: the Gaussian kernel written out, edges repeated (scipy's "nearest").
    offsets = np.arange(-6, 7)
    kernel = np.exp(-0.5 * (offsets / 1.5) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([plain[:1].repeat(6, 0), plain, plain[-1:].repeat(6, 0)])
    want = sum(w * padded[6 + o : 6 + o + len(plain)] for w, o in zip(kernel, offsets))
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert np.abs(np.diff(got, 2, axis=0)).mean() < np.abs(np.diff(plain, 2, axis=0)).mean()


@pytest.mark.slow
def test_compiled_model_equals_the_eager_one(refiner: Refiner, sample_sequences):
    windows = _windows(refiner, sample_sequences[:2])
    compiled = Refiner(refiner.model, refiner.config.replace(["refine.compile=true"]), "cpu")
    assert compiled.forward is not None
    np.testing.assert_allclose(
        compiled.run_windows(windows), refiner.run_windows(windows), atol=1e-4
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_refinement_uses_device_batches_and_bf16_and_matches_the_cpu(
    refiner: Refiner, sample_sequences
):
    gpu = Refiner(refiner.model, refiner.config, device="cuda")
    assert gpu.bf16 and gpu.batch_windows == refiner.config.refine.gpu_batch_windows
    windows = _windows(refiner, sample_sequences)
    cpu = Refiner(refiner.model.cpu(), refiner.config, device="cpu").run_windows(windows)
    got = gpu.run_windows(windows)
    assert np.abs(got - cpu).max() <= 0.02 * np.abs(cpu).max()
