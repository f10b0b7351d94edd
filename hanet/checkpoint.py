"""The one HANet checkpoint format: weights plus everything needed to rebuild the model.

A checkpoint is a ``torch.save``-d dict that ``torch.load(..., weights_only=True)`` can read::

    {
        "format": "hanet-checkpoint",
        "version": 2,
        "config": Config.to_dict(),       # the full run config, plain types
        "model": state_dict,              # unwrapped (no "module." / "_orig_mod." prefixes), CPU
        "optimizer": ...,                 # optional optimizer.state_dict()
        "scheduler": ...,                 # optional scheduler.state_dict()
        "epoch": int,                     # optional
        "metrics": {...},                 # optional, JSON-able
        "checksums": {"model": "sha256:...", "optimizer": "sha256:..."},
    }

Integrity
    ``torch.load`` does not verify the bytes of the tensors it reads: a file damaged on disk or
    in transfer loads, and the model then computes NaN or garbage. So every checkpoint carries
    a SHA-256 of the content of its weights (and of its optimiser state, which a resumed run
    would load), verified on every load; a mismatch is a :class:`CheckpointError` naming the
    file. Version 1 files (written before checksums existed) still load, unverified.

A checkpoint is read from and written to any :class:`~hanet.io.location.Location` (local or
S3), a local path, raw bytes or a binary file object; writes are atomic. A training
checkpoint keeps the optimiser; :func:`model_file_bytes` gives the model file a run exports
(weights, config, epoch, metrics).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import IO, Any

import torch
from torch import nn

from hanet.config import Config, ConfigError, from_dict
from hanet.errors import UserError
from hanet.io.location import Location, parse_location
from hanet.io.storage import open_input, write_bytes_atomic
from hanet.model import HANet
from hanet.state_hash import content_hash

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "check_checkpoint",
    "checkpoint_bytes",
    "load_checkpoint",
    "load_model",
    "model_file_bytes",
    "save_checkpoint",
    "unwrap_model",
]

FORMAT = "hanet-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: no checksums
# The parts whose content the checksums cover: what a model or a resumed run computes with.
CHECKED_PARTS = ("model", "optimizer")
# What the exported model file keeps of a training checkpoint.
MODEL_FILE_PARTS = ("format", "version", "config", "model", "epoch", "metrics")

Source = Location | str | os.PathLike[str] | bytes | memoryview | IO[bytes]


class CheckpointError(UserError, ValueError):
    """A file is not a readable HANet checkpoint; the message names the file."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DDP/DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _plain_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    # Tensors and NumPy scalars become Python numbers; anything else non-JSON is an error now,
    # rather than an unloadable checkpoint later.
    def convert(value: Any) -> Any:
        if hasattr(value, "item"):
            return value.item()
        raise TypeError(f"metric value {value!r} is not JSON-serialisable")

    return json.loads(json.dumps(dict(metrics), default=convert))


def checkpoint_bytes(
    model: nn.Module,
    config: Config,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    epoch: int | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> bytes:
    """A checkpoint as bytes.

    Args:
        model: the model, possibly wrapped by DDP or ``torch.compile``.
        config: the full run configuration; ``config.model`` must describe ``model``.
        optimizer: optimizer whose state to include.
        scheduler: learning-rate scheduler (anything with ``state_dict()``) to include.
        epoch: last completed epoch.
        metrics: plain metrics, e.g. ``{"val_mpjpe": 41.2}``.

    Raises:
        ValueError: ``config.model`` does not match the model's own configuration.
        TypeError: a metric value is not JSON-serialisable.
    """
    model = unwrap_model(model)
    model_config = getattr(model, "config", None)
    if model_config is not None and model_config != config.model:
        raise ValueError(
            f"config.model {config.model} does not match the model's config {model_config}"
        )
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if epoch is not None:
        payload["epoch"] = int(epoch)
    if metrics is not None:
        payload["metrics"] = _plain_metrics(metrics)
    return _saved(payload)


def _saved(payload: dict[str, Any]) -> bytes:
    payload = dict(payload, version=VERSION)
    payload["checksums"] = {
        part: content_hash(payload[part]) for part in CHECKED_PARTS if part in payload
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _verify(ckpt: dict[str, Any], name: str) -> None:
    if ckpt["version"] == 1:
        return
    checksums = ckpt.get("checksums")
    if not isinstance(checksums, dict) or "model" not in checksums:
        raise CheckpointError(f"{name}: checkpoint has no checksum of its weights")
    for part, expected in checksums.items():
        if part not in ckpt:
            raise CheckpointError(f"{name}: checkpoint lists a checksum of {part!r} but has none")
        if content_hash(ckpt[part]) != expected:
            what = "weights do" if part == "model" else f"{part} state does"
            them = "them" if part == "model" else "it"
            raise CheckpointError(
                f"{name}: the {what} not match the checksum stored with {them}: the file is "
                "damaged (copy or export it again)"
            )


def model_file_bytes(source: Source, name: str | None = None) -> bytes:
    """The model file of a training checkpoint: weights, config, epoch and metrics, without the
    optimiser and scheduler (which hold about twice the weights' size again), re-checksummed.

    Raises:
        CheckpointError: ``source`` is not a valid checkpoint (it is verified first).
    """
    ckpt = load_checkpoint(source, name=name)
    return _saved({key: ckpt[key] for key in MODEL_FILE_PARTS if key in ckpt})


def save_checkpoint(
    target: Location | str | os.PathLike[str],
    model: nn.Module,
    config: Config,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    epoch: int | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Location:
    """Write :func:`checkpoint_bytes` atomically: a reader sees the old file or the complete
    new one. Returns the location written."""
    location = target if isinstance(target, Location) else parse_location(target)
    data = checkpoint_bytes(model, config, optimizer, scheduler, epoch, metrics)
    write_bytes_atomic(location, data)
    return location


def _describe(source: Source) -> str:
    if isinstance(source, Location):
        return source.uri
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, bytes | memoryview):
        return "<checkpoint bytes>"
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")


def _as_file(source: Source) -> IO[bytes]:
    if isinstance(source, bytes | memoryview):
        return io.BytesIO(source)
    if isinstance(source, str | os.PathLike | Location):
        location = source if isinstance(source, Location) else parse_location(source)
        # One sized read: read_bytes streams in chunks, several times slower for a 1 GB file.
        with open_input(location) as reader:
            return io.BytesIO(reader.read())
    return source


def load_checkpoint(
    source: Source, map_location: Any = "cpu", name: str | None = None
) -> dict[str, Any]:
    """Read and validate a checkpoint (``weights_only=True``: no arbitrary code runs) and verify
    its checksums.

    Args:
        source: a location, local path, the checkpoint's bytes or a readable binary file.
        map_location: passed to ``torch.load``.
        name: how errors name the file (default: the location or path; give it for bytes).

    Returns:
        The checkpoint dict described in the module docstring.

    Raises:
        FileNotFoundError: there is no such file.
        CheckpointError: the file is not a valid checkpoint of a supported version, or its
            content does not match its checksums (a damaged file).
    """
    name = name or _describe(source)
    stream = _as_file(source)
    try:
        ckpt = torch.load(stream, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several unrelated types for corrupt input
        raise CheckpointError(f"{name}: not a readable checkpoint ({_load_problem(err)})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{name}: not a {FORMAT} file (format: {found!r})")
    version = ckpt.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{name}: unsupported {FORMAT} version {version!r} (this code reads "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    for key in ("config", "model"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{name}: checkpoint has no {key!r} dict")
    _verify(ckpt, name)
    return ckpt


def _fitting_config(ckpt: dict[str, Any], name: str) -> Config:
    """The checkpoint's config, once its weights are known to fit the model it describes
    (checked on the meta device: no memory for the weights)."""
    try:
        config = from_dict(ckpt["config"])
    except ConfigError as err:
        raise CheckpointError(f"{name}: invalid config in checkpoint ({err})") from err
    with torch.device("meta"):
        expected = HANet(config.model).state_dict()
    misfit = _misfit(expected, ckpt["model"])
    if misfit:
        raise CheckpointError(f"{name}: the weights do not fit the stored config.model ({misfit})")
    return config


def check_checkpoint(source: Source, name: str | None = None) -> Config:
    """Everything :func:`load_model` checks (format, checksums, config, weights against the
    model the config describes) without building the model; returns the config. A job checks
    here, once, before it starts workers that would each fail on a bad checkpoint.

    Raises:
        FileNotFoundError: the path does not exist.
        CheckpointError: as :func:`load_model`.
    """
    name = name or _describe(source)
    return _fitting_config(load_checkpoint(source, name=name), name)


def load_model(
    source: Source, map_location: Any = "cpu", name: str | None = None
) -> tuple[HANet, Config]:
    """Rebuild the model and its run configuration from a checkpoint.

    Args:
        source: a location, local path, the checkpoint's bytes or a readable binary file.
        map_location: device for the loaded tensors; a device (or device string) also
            receives the model.
        name: how errors name the file (default: the location or path; give it for bytes).

    Returns:
        ``(model, config)``, the model in eval mode.

    Raises:
        FileNotFoundError: the path does not exist.
        CheckpointError: invalid or damaged checkpoint, or a config its weights do not fit; the
            message (one line) names the file.
    """
    name = name or _describe(source)
    ckpt = load_checkpoint(source, map_location=map_location, name=name)
    config = _fitting_config(ckpt, name)
    # Built on the meta device and given the loaded tensors themselves (assign): no random
    # initialisation to overwrite and no second copy of the weights. For the paper model (287 M
    # parameters) that is 3 of the 6 s an actor spent loading, and 1.15 GB of memory. The fixed
    # buffers are built on the CPU in any case (hanet.model).
    with torch.device("meta"):
        model = HANet(config.model)
    try:
        model.load_state_dict(ckpt["model"], assign=True)
    except RuntimeError as err:  # anything _misfit does not foresee, kept to one line
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(
            f"{name}: the weights do not fit the stored config ({first})"
        ) from err
    if isinstance(map_location, str | torch.device):
        model.to(map_location)
    return model.eval(), config


def _load_problem(err: Exception) -> str:
    """torch.load's complaint in one short line. Its safe loader's refusal spans a page and
    suggests ``weights_only=False``, which is exactly what must not be done with such a file."""
    text = str(err).strip()
    if "Weights only load failed" in text:
        return "the safe loader refused it: not a file torch.save wrote, or damaged"
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def _misfit(expected: Mapping[str, torch.Tensor], found: Mapping[str, Any]) -> str:
    """What keeps ``found`` weights from loading into a model with ``expected`` ones, in one
    line (``load_state_dict`` lists every tensor on a line of its own)."""
    shapes = [
        f"{key}: {list(found[key].shape)} in the file, {list(value.shape)} for the config"
        for key, value in expected.items()
        if key in found and getattr(found[key], "shape", None) != value.shape
    ]
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} tensor(s) of another shape, e.g. {shapes[0]}")
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    return "; ".join(problems)
