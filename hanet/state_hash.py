"""Content hashes of state dicts (weights, optimiser state): equal content, equal hash.

``torch.load`` does not check the bytes of the tensors it reads, so :mod:`hanet.checkpoint`
stores these hashes beside the tensors and compares them on every load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["content_hash"]


def _digest(value: Any, digest: Any) -> None:
    """Feed a state dict's content to ``digest``: keys, tensors (dtype, shape, bytes) and plain
    values, in a fixed order, so that equal content gives an equal hash."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().data)
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=str):
            digest.update(repr(key).encode() + b":")
            _digest(value[key], digest)
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(b"[")
        for item in value:
            _digest(item, digest)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode() + b";")


def content_hash(value: Any) -> str:
    """``sha256:<hex>`` of a state dict's content (see :func:`_digest`)."""
    digest = hashlib.sha256()
    _digest(value, digest)
    return "sha256:" + digest.hexdigest()
