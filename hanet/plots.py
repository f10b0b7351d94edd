"""Pictures of a refined sequence: error and acceleration over time, and a skeleton GIF of
input vs refined vs ground truth. Both return image bytes; the report writes them."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: render to memory only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hanet import metrics  # noqa: E402
from hanet.data.schema import Sequence  # noqa: E402
from hanet.skeletons import get_layout  # noqa: E402

__all__ = ["error_over_time_png", "skeleton_gif"]


def error_over_time_png(seq: Sequence, curves: dict[str, np.ndarray]) -> bytes:
    """Per-frame position error and acceleration magnitude of each method, as PNG bytes.

    Shape:
        curves: method name -> poses ``[T, J, D]`` in ``seq``'s units.
    """
    unit = "px" if seq.representation == "2D" else ("mm" if seq.representation == "3D" else "")
    scale = 1000.0 if seq.representation == "3D" else 1.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    frames = np.arange(1, seq.num_frames - 1)
    for name, poses in curves.items():
        error = metrics.position_errors(poses, seq.gt).mean(axis=1) * scale
        top.plot(error, label=name, linewidth=1.2)
        bottom.plot(frames, metrics.accel_magnitude_per_frame(poses) * scale, label=name)
    bottom.plot(
        frames,
        metrics.accel_magnitude_per_frame(seq.gt) * scale,
        label="ground truth",
        color="k",
        linewidth=0.8,
        linestyle="--",
    )
    top.set_ylabel(f"position error ({unit})")
    bottom.set_ylabel(f"acceleration ({unit}/frame²)")
    bottom.set_xlabel("frame")
    top.set_title(seq.sequence_id)
    top.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def skeleton_gif(seq: Sequence, curves: dict[str, np.ndarray], max_frames: int = 60) -> bytes:
    """Side-by-side skeleton animation (input | refined | ground truth) as GIF bytes."""
    layout = get_layout(seq.layout)
    panels = {**curves, "ground truth": seq.gt}
    frames = min(seq.num_frames, max_frames)
    everything = np.concatenate([p[:frames, :, :2] for p in panels.values()])
    low, high = everything.reshape(-1, 2).min(0), everything.reshape(-1, 2).max(0)
    pad = 0.05 * (high - low).max()
    # One figure whose artists move from frame to frame: building a figure per frame costs
    # most of the report's time.
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), dpi=60, squeeze=False)
    artists = []
    for ax, name in zip(axes[0], panels):
        bones = [ax.plot([], [], color="tab:blue", linewidth=2)[0] for _ in layout.bones]
        joints = ax.scatter(
            np.zeros(layout.num_joints), np.zeros(layout.num_joints), s=8, color="tab:red"
        )
        ax.set_xlim(low[0] - pad, high[0] + pad)
        # Image coordinates grow downwards in 2D; 3D y is up.
        if seq.representation == "2D":
            ax.set_ylim(high[1] + pad, low[1] - pad)
        else:
            ax.set_ylim(low[1] - pad, high[1] + pad)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        artists.append((ax, name, bones, joints))
    fig.tight_layout()
    images = []
    for t in range(frames):
        for ax, name, bones, joints in artists:
            xy = panels[name][t, :, :2]
            for line, (a, b) in zip(bones, layout.bones):
                line.set_data(xy[[a, b], 0], xy[[a, b], 1])
            joints.set_offsets(xy)
            ax.set_title(f"{name} ({t})", fontsize=9)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3]).convert("P", palette=Image.ADAPTIVE))
    plt.close(fig)
    out = io.BytesIO()
    duration = int(1000 / (seq.fps or 30.0))
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
    )
    return out.getvalue()
