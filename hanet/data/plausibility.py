"""Implausible poses: finite values that no estimator and no motion capture produces.

NaN and inf are caught by :func:`hanet.data.schema.validate_sequence`; a finite but absurd
value (a sentinel such as ``1e6``, a byte-order or unit slip, a corrupt row) is not, and would
be written into a training shard or blow up a refinement. The rule judges every value against
the sequence's own body, so it holds for any joint layout and any unit:

Positions (2D pixels or normalised coordinates, 3D metres)
    Per frame, the pose centre is the median of the observed joints and the frame's spread the
    median distance of its joints from that centre; the sequence's *body size* is the median
    spread over frames. Medians make both immune to what they are meant to catch: up to half
    the joints of a frame, or half the frames, may be broken. A joint is implausible when it
    lies more than :data:`LIMIT` body sizes from its own frame's centre; a whole frame is when
    its centre lies more than :data:`LIMIT` times (body size + the median distance of the
    frame centres from the sequence's centre, i.e. how far the person moves) from the
    sequence's centre. In 2D with a known image size, anything inside the image extended by
    its own width and height on every side is plausible whatever the statistics say: an
    estimator's output lies in or near the picture.
Rotations (SMPL 6D)
    Each joint holds two columns of a rotation matrix, unit vectors (raw network outputs are
    not normalised but stay of that order). A column longer than :data:`LIMIT` times the
    larger of 1 and the sequence's median column length is implausible.

Why :data:`LIMIT` = 100
    Real failures are large but bounded. In the bundled sample, whose simulated estimator
    errors include outlier bursts and left/right swaps, no joint lies beyond 11 body sizes from
    its frame's centre and no frame centre beyond 7 (2D; 4 and 1.3 in 3D). A joint snapped to
    another person or to the far side of the picture, the worst ordinary detection failure,
    is at most about one image diagonal away: some 15 body sizes for a person a third of the
    image tall and 60 for one a tenth of it, and in 2D the image margin accepts it anyway.
    The person crossing the scene is covered by the movement term. A factor of 100 leaves room
    above all of that, while the values the check exists for (``1e4`` and beyond in pixels, a
    kilometre in metres) lie thousands of body sizes out.

Units
    :func:`units_problem` flags a body size that does not fit the declared units: in 2D pixels
    a median joint spread below 0.2 % of the image diagonal (a person about 1 % of the image
    tall: metres or normalised coordinates given as pixels) or above half of it; in 3D metres
    one outside 3 cm to 3 m (millimetres, centimetres); 6D rotation columns whose median
    length is not about 1. It only warns: the values are finite and may be right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hanet.data.folds import trailing_all, trailing_max, trailing_norm

__all__ = [
    "LIMIT",
    "Implausible",
    "Reference",
    "clear_of_implausible",
    "find_implausible",
    "in_image",
    "nanmedian_rows",
    "outside_reference",
    "reference",
    "references",
    "units_problem",
    "units_problem_of",
]

LIMIT = 100.0
# Units: body size (median joint spread) relative to the image diagonal, and in metres.
_PIXEL_BODY = (0.002, 0.5)
_METRE_BODY = (0.03, 3.0)
_ROTATION_COLUMN = (0.5, 2.0)


@dataclass(frozen=True)
class Implausible:
    """The first implausible value of a pose array, and how many there are.

    Attributes:
        frame, joint: Where the first one is.
        value: Its coordinates.
        ratio: Its distance from its reference in body sizes (column lengths for rotations).
        reference: What it was compared with, in words.
        scale: The body size (or median column length) it was measured in.
        count: How many values are implausible in all.
    """

    frame: int
    joint: int
    value: tuple[float, ...]
    ratio: float
    reference: str
    scale: float
    count: int

    def describe(self, joint_name: str | None = None) -> str:
        """``frame F, joint J (name) at (x, y) is N body sizes from ...`` for error messages."""
        coords = ", ".join(f"{v:.6g}" for v in self.value)
        name = f" ({joint_name})" if joint_name else ""
        more = f"; {self.count} implausible values in all" if self.count > 1 else ""
        unit = "column lengths" if self.reference == "a unit vector" else "body sizes"
        return (
            f"frame {self.frame}, joint {self.joint}{name} at ({coords}) is implausible: "
            f"{self.ratio:.3g} {unit} from {self.reference} (body size {self.scale:.4g}; "
            f"at most {LIMIT:.0f} are plausible){more}"
        )


@dataclass(frozen=True)
class Reference:
    """What an array of poses is judged against: its body size and where its poses are.

    Attributes:
        representation: ``"2D"``, ``"3D"`` or ``"smpl"``.
        scale: Body size (positions) or median 6D column length (rotations); None when no
            frame has any extent to measure (every pose collapsed to a point).
        low, high: Per axis, the smallest and largest frame centre (positions only).
    """

    representation: str
    scale: float | None
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """``nanmedian(values, axis=1)`` (NaN where a row has no number) without numpy's per-row
    Python overhead and warnings: NaN sorts last, so each row's median sits at its count of
    numbers. (numpy's own goes through masked arrays for small rows, many times slower.)"""
    ordered = np.sort(values, axis=1)
    size = values.shape[1]
    if size and not np.isnan(ordered[:, -1]).any():
        # No NaN anywhere (NaN sorts last): every row's median sits in the middle. The
        # common case, and much cheaper than gathering at per-row positions.
        return (ordered[:, (size - 1) // 2] + ordered[:, size // 2]) / 2
    count = (~np.isnan(values)).sum(axis=1, keepdims=True)  # [T, 1, ...]
    # Elements (n - 1) // 2 and n // 2 of n numbers: the same one when n is odd.
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=1)
    high = np.take_along_axis(ordered, np.minimum(count // 2, values.shape[1] - 1), axis=1)
    return np.where(count > 0, (low + high) / 2, np.nan).squeeze(axis=1)


def _positions(poses: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(frame centres [T, D], joint distances from them [T, J], body size) of observed joints."""
    # float32 is exact enough for ratios of 100, and an absurd value that overflows it
    # becomes inf: still flagged.
    observed = np.where(mask[..., None], poses.astype(np.float32, copy=False), np.float32(np.nan))
    centres = nanmedian_rows(observed)
    with np.errstate(over="ignore"):
        distances = trailing_norm(observed - centres[:, None, :])
    spreads = nanmedian_rows(distances)
    measurable = spreads[np.isfinite(spreads) & (spreads > 0)]
    scale = float(_median(measurable)) if measurable.size else None
    return centres, distances, scale


def _median(values: np.ndarray) -> np.floating:
    """``np.median`` of a 1-D array, bit for bit, without its generic machinery (ten times its
    arithmetic on the short arrays here)."""
    ordered = np.sort(values)
    count = len(ordered)
    return (ordered[(count - 1) // 2] + ordered[count // 2]) / 2


def _columns(poses: np.ndarray) -> np.ndarray:
    """[T, J, 2] lengths of the two 3-vectors of each 6D rotation."""
    frames, joints, _ = poses.shape
    return trailing_norm(poses.astype(np.float64).reshape(frames, joints, 2, 3))


def in_image(poses: np.ndarray, image_size: tuple[int, int] | np.ndarray) -> np.ndarray:
    """[T, J] True inside the image extended by its own size on every side (2D only).

    Shape:
        poses: [T, J, 2]; image_size: ``(width, height)``, or one per frame ``[T, 1, 2]``
        (NaN where a frame's image is unknown: nothing is inside it).
    """
    size = np.asarray(image_size, dtype=np.float64)
    return trailing_all((poses >= -size) & (poses <= 2 * size))


def _first(
    flagged: np.ndarray, ratios: np.ndarray, poses: np.ndarray, reference: str, scale: float
) -> Implausible | None:
    if not flagged.any():
        return None  # the usual answer, found without listing the hits
    hits = np.argwhere(flagged)
    if not len(hits):
        return None
    frame, joint = (int(i) for i in hits[0])
    return Implausible(
        frame,
        joint,
        tuple(float(v) for v in poses[frame, joint]),
        float(ratios[frame, joint]),
        reference,
        scale,
        len(hits),
    )


def find_implausible(
    poses: np.ndarray,
    mask: np.ndarray,
    representation: str,
    image_size: tuple[int, int] | None = None,
) -> Implausible | None:
    """The first observed value that breaks the rule of the module docstring, if any.

    Args:
        poses: Finite poses.
        mask: Which joints were observed; the others are not judged.
        representation: ``"2D"``, ``"3D"`` or ``"smpl"``.
        image_size: ``(width, height)`` of 2D pixel inputs, when known.

    Shape:
        poses: [T, J, D]; mask: [T, J].
    """
    if representation == "smpl":
        lengths = _columns(poses)
        scale = max(1.0, float(np.median(lengths[mask]))) if mask.any() else 1.0
        ratios = trailing_max(lengths) / scale
        return _first(mask & (ratios > LIMIT), ratios, poses, "a unit vector", scale)
    centres, distances, scale = _positions(poses, mask)
    if scale is None:
        return None  # every pose is a point: nothing to measure against
    joint_ratios = distances / scale
    flagged = mask & (joint_ratios > LIMIT)
    middle = nanmedian_rows(centres[None])[0]  # [D], over frames
    with np.errstate(over="ignore"):
        shift = trailing_norm(centres - middle)  # NaN for frames with nothing observed
    movement = float(nanmedian_rows(shift[None, :, None])[0, 0])
    # NaN (a frame with nothing observed) compares False: never flagged, never reported.
    frame_ratios = shift / (scale + movement)
    frames = mask & (frame_ratios > LIMIT)[:, None]
    if representation == "2D" and image_size is not None and (flagged.any() or frames.any()):
        inside = in_image(poses, image_size)
        flagged &= ~inside
        frames &= ~inside
    joint_hit = _first(flagged, joint_ratios, poses, "its frame's pose centre", scale)
    ratios = np.broadcast_to(frame_ratios[:, None], mask.shape)
    frame_hit = _first(frames, ratios, poses, "the sequence's centre (the whole pose moved)", scale)
    if joint_hit is None or (frame_hit is not None and frame_hit.frame < joint_hit.frame):
        return frame_hit
    return joint_hit


def clear_of_implausible(poses: list[np.ndarray], masks: list[np.ndarray]) -> np.ndarray:
    """Which of several position sequences (2D or 3D) certainly hold nothing that
    :func:`find_implausible` would flag, judged for all of them at once.

    The per-frame measures (centre, joint distances, spread) are the ones
    :func:`find_implausible` computes, for every frame of every sequence in one pass; the
    per-sequence medians are replaced by bounds that can only make the test stricter: the body
    size is at least the sequence's smallest measurable spread, and a frame centre lies at
    most the diagonal of the box around all the sequence's centres from their median. A
    sequence is cleared when its farthest joint and that diagonal both stay within
    :data:`LIMIT` times its smallest spread (with a margin for rounding); ordinary data always
    is, by an order of magnitude. Any other sequence is not judged here: it needs
    :func:`find_implausible`'s exact look. One pass over many short sequences costs what a few
    exact looks do.

    Shape:
        poses[i]: ``[T_i, J, D]``; masks[i]: ``[T_i, J]``; output ``[S]`` bool.
    """
    starts = np.cumsum([0] + [len(p) for p in poses[:-1]])
    mask = np.concatenate(masks)
    joined = np.concatenate(poses).astype(np.float32, copy=False)
    observed = np.where(mask[..., None], joined, np.float32(np.nan))
    with np.errstate(over="ignore", invalid="ignore"):
        centres = nanmedian_rows(observed)  # [F, D]
        distances = trailing_norm(observed - centres[:, None, :])  # [F, J]
        spreads = nanmedian_rows(distances)  # [F]
        measurable = np.isfinite(spreads) & (spreads > 0)
        smallest = np.minimum.reduceat(np.where(measurable, spreads, np.inf), starts)
        farthest = np.fmax.reduceat(np.fmax.reduce(distances, axis=1), starts)
        box = np.fmax.reduceat(centres, starts, axis=0) - np.fmin.reduceat(centres, starts, axis=0)
        diagonal = trailing_norm(box.astype(np.float64))
        bound = LIMIT * (1 - 1e-3) * smallest.astype(np.float64)
        # NaN (nothing observed at all) compares False: such a sequence has nothing to flag.
        return ~(farthest > bound) & ~(diagonal > bound)


def reference(poses: np.ndarray, mask: np.ndarray, representation: str) -> Reference:
    """The body size and extent of plausible input poses, to judge outputs against.

    Shape:
        poses: [T, J, D]; mask: [T, J].
    """
    if representation == "smpl":
        lengths = _columns(poses)[mask]
        return Reference(representation, float(np.median(lengths)) if lengths.size else 1.0)
    centres, _, scale = _positions(poses, mask)
    known = centres[trailing_all(np.isfinite(centres))]
    return Reference(representation, scale, known.min(axis=0), known.max(axis=0))


def references(
    poses: list[np.ndarray], masks: list[np.ndarray], representation: str
) -> list[Reference]:
    """:func:`reference` of each of several sequences, the same values, measured together: the
    per-frame centres and spreads of every sequence in one pass (an object of a few short
    tracks otherwise pays numpy's per-call cost a dozen times per track).

    Shape:
        poses[i]: ``[T_i, J, D]``; masks[i]: ``[T_i, J]``.
    """
    if representation == "smpl" or not poses:
        return [reference(p, m, representation) for p, m in zip(poses, masks)]
    lengths = [len(p) for p in poses]
    starts = np.cumsum([0] + lengths[:-1])
    observed = np.where(
        np.concatenate(masks)[..., None],
        np.concatenate(poses).astype(np.float32, copy=False),
        np.float32(np.nan),
    )
    with np.errstate(over="ignore", invalid="ignore"):
        centres = nanmedian_rows(observed)  # [F, D]
        spreads = nanmedian_rows(trailing_norm(observed - centres[:, None, :]))
    known = trailing_all(np.isfinite(centres))  # [F]
    measurable = np.isfinite(spreads) & (spreads > 0)
    low = np.fmin.reduceat(np.where(known[:, None], centres, np.inf), starts, axis=0)
    high = np.fmax.reduceat(np.where(known[:, None], centres, -np.inf), starts, axis=0)
    found = np.add.reduceat(known, starts)
    out = []
    for i, (begin, length) in enumerate(zip(starts, lengths)):
        if not found[i]:  # no frame observed: reference's own answer (or error)
            out.append(reference(poses[i], masks[i], representation))
            continue
        own = spreads[begin : begin + length][measurable[begin : begin + length]]
        scale = float(_median(own)) if own.size else None
        out.append(Reference(representation, scale, low[i], high[i]))
    return out


def outside_reference(
    poses: np.ndarray, ref: Reference, image_size: tuple[int, int] | None = None
) -> Implausible | None:
    """The first value of ``poses`` (every joint, e.g. a model's output) that is farther than
    :data:`LIMIT` body sizes outside the range its input's frame centres cover, if any.

    Shape:
        poses: [T, J, D].
    """
    if ref.representation == "smpl":
        scale = max(1.0, ref.scale or 1.0)
        ratios = trailing_max(_columns(poses)) / scale
        return _first(ratios > LIMIT, ratios, poses, "a unit vector", scale)
    if ref.scale is None or ref.low is None or ref.high is None:
        return None
    values = poses.astype(np.float64)
    beyond = trailing_max(np.maximum(ref.low - values, values - ref.high))  # [T, J]
    ratios = np.maximum(beyond, 0.0) / ref.scale
    flagged = ratios > LIMIT
    if ref.representation == "2D" and image_size is not None:
        flagged &= ~in_image(poses, image_size)
    return _first(flagged, ratios, poses, "the input's poses", ref.scale)


def units_problem(
    poses: np.ndarray,
    mask: np.ndarray,
    representation: str,
    image_size: tuple[int, int] | None = None,
) -> str | None:
    """Why the body size does not look like the declared units (see the module docstring), or
    None when it does or cannot be judged.

    Shape:
        poses: [T, J, D]; mask: [T, J].
    """
    if representation == "2D" and image_size is None:
        return None  # pixels cannot be told from other units without the image
    return units_problem_of(reference(poses, mask, representation), image_size)


def units_problem_of(ref: Reference, image_size: tuple[int, int] | None = None) -> str | None:
    """:func:`units_problem` judged from the input's :func:`reference` (which the refinement
    computes once per sequence, for this and for the checks on its output)."""
    representation, scale = ref.representation, ref.scale
    if representation == "smpl":
        median = scale if scale is not None else 1.0
        low, high = _ROTATION_COLUMN
        if low <= median <= high:
            return None
        return (
            f"6D rotation columns have a median length of {median:.3g}, but they are unit "
            "vectors (are these rotations in another form?)"
        )
    if scale is None or (representation == "2D" and image_size is None):
        return None
    if representation == "3D":
        low, high = _METRE_BODY
        if low <= scale <= high:
            return None
        guess = "millimetres or centimetres" if scale > high else "another unit"
        return (
            f"body size {scale:.3g} (median joint distance from the pose centre) does not look "
            f"like metres (a person measures about {low:g} to {high:g}); {guess}?"
        )
    if image_size is None:
        return None
    diagonal = float(np.hypot(*image_size))
    low, high = (fraction * diagonal for fraction in _PIXEL_BODY)
    if low <= scale <= high:
        return None
    width, height = image_size
    guess = (
        "metres or normalised coordinates rather than pixels"
        if scale < low
        else "pixels of a larger image"
    )
    return (
        f"body size {scale:.3g} px (median joint distance from the pose centre) is implausible "
        f"for a {width}x{height} image ({low:.3g} to {high:.3g} px expected): {guess}?"
    )
