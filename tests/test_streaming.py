"""Live refinement: the stream equals offline causal refinement frame by frame, and no output
frame depends on input more than k frames later."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from posedata import IMAGE_SIZE, seq2d

from hanet.data.schema import Sequence, validate_sequence
from hanet.refiner import RefineError, Refiner
from hanet.streaming import StreamRefiner

# Batched and single-window forward passes round differently in float32: a few ulps of
# coordinates in the hundreds of pixels.
ATOL = 2e-3


def _offline(refiner: Refiner, seq: Sequence, lookahead: int | None) -> np.ndarray:
    config = refiner.config.replace({"refine.lookahead": lookahead})
    return Refiner(refiner.model, config, device="cpu").refine(seq).pred


def _stream(stream: StreamRefiner, seq: Sequence, confidence: bool = False) -> np.ndarray:
    out = []
    for t in range(seq.num_frames):
        frame = np.where(seq.observed()[t][:, None], seq.pred[t], np.nan)
        if confidence:  # missing as zero confidence instead of NaN
            frame = np.nan_to_num(frame, nan=-1.0)
            got = stream.push(frame, seq.observed()[t].astype(np.float32))
        else:
            got = stream.push(frame)
        assert len(got) == (1 if t >= stream.lookahead else 0)
        out += got
    out += stream.flush()
    return np.stack(out)


def _holed(seq: Sequence) -> Sequence:
    mask = np.ones(seq.pred.shape[:2], dtype=bool)
    mask[5:9, 3] = False  # a gap inside
    mask[:3, 7] = False  # missing at the start
    mask[-4:, 0] = False  # and at the end
    return validate_sequence(dataclasses.replace(seq, joint_mask=mask))


@pytest.mark.parametrize("lookahead", [0, 2, 4])
def test_stream_equals_offline_causal_refinement(
    checkpoint: Path, refiner: Refiner, lookahead: int
) -> None:
    seq = _holed(validate_sequence(seq2d(24)))
    stream = StreamRefiner.from_checkpoint(checkpoint, lookahead=lookahead, device="cpu")
    offline = _offline(refiner, seq, lookahead)
    np.testing.assert_allclose(_stream(stream, seq), offline, atol=ATOL)
    # The refiner is ready for the next stream after a flush; zero confidence marks missing.
    np.testing.assert_allclose(_stream(stream, seq, confidence=True), offline, atol=ATOL)


@pytest.mark.parametrize("frames", [1, 3, 5])
def test_streams_shorter_than_a_window(checkpoint: Path, refiner: Refiner, frames: int) -> None:
    seq = validate_sequence(seq2d(frames))
    stream = StreamRefiner.from_checkpoint(checkpoint, lookahead=2, device="cpu")
    np.testing.assert_allclose(_stream(stream, seq), _offline(refiner, seq, 2), atol=ATOL)


@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_no_output_depends_on_input_after_t_plus_k(refiner: Refiner, lookahead: int) -> None:
    seq = _holed(validate_sequence(seq2d(24)))
    base = _offline(refiner, seq, lookahead)
    rng = np.random.default_rng(lookahead)
    for cut in (0, 6, 13, seq.num_frames - 2):
        changed = seq.pred.copy()
        changed[cut + 1 :] += rng.normal(0, 30, changed[cut + 1 :].shape).astype(np.float32)
        out = _offline(refiner, dataclasses.replace(seq, pred=changed), lookahead)
        # Frames <= cut - k see only frames <= cut: unchanged. Later ones do change.
        last = cut - lookahead
        if last >= 0:
            np.testing.assert_array_equal(out[: last + 1], base[: last + 1])
        assert not np.allclose(out[last + 1 :], base[last + 1 :])


def test_offline_refinement_is_not_causal(refiner: Refiner) -> None:
    # The check above can fail: merged offline windows read frames ahead.
    seq = validate_sequence(seq2d(24))
    changed = seq.pred.copy()
    changed[12:] += 30.0
    out = _offline(refiner, dataclasses.replace(seq, pred=changed), None)
    assert not np.array_equal(out[:11], _offline(refiner, seq, None)[:11])


def test_stream_needs_an_image_size_for_published_2d(checkpoint: Path, refiner: Refiner):
    config = refiner.config.replace({"data.image_width": None, "data.image_height": None})
    with pytest.raises(RefineError, match="image size"):
        StreamRefiner(refiner.model, config, lookahead=0)
    stream = StreamRefiner(refiner.model, config, lookahead=0, image_size=IMAGE_SIZE)
    assert len(stream.push(np.zeros((15, 2)))) == 1


def test_bad_frames_and_lookahead(checkpoint: Path) -> None:
    stream = StreamRefiner.from_checkpoint(checkpoint, lookahead=1, device="cpu")
    with pytest.raises(ValueError, match="15 joints x 2"):
        stream.push(np.zeros((14, 2)))
    with pytest.raises(ValueError, match="inf"):
        stream.push(np.full((15, 2), np.inf))
    with pytest.raises(RefineError, match="lookahead=5"):
        StreamRefiner.from_checkpoint(checkpoint, lookahead=5)  # T = 5: positions 0..4
    assert stream.flush() == []


def test_stream_equals_offline_bit_for_bit_window_by_window(checkpoint: Path, refiner: Refiner):
    # One window per forward pass offline too: the same arithmetic, the same bits.
    seq = _holed(validate_sequence(seq2d(20)))
    config = refiner.config.replace({"refine.lookahead": 2, "refine.batch_windows": 1})
    offline = Refiner(refiner.model, config, device="cpu").refine(seq).pred
    stream = StreamRefiner.from_checkpoint(checkpoint, lookahead=2, device="cpu")
    np.testing.assert_array_equal(_stream(stream, seq), offline)
