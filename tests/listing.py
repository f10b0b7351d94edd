"""Listing helpers for the storage tests: what a folder holds, and what readers see."""

from __future__ import annotations

from hanet.io.location import Location
from hanet.io.storage import (
    all_files,
    exists,
    list_files,
)


def all_names(loc: Location) -> list[str]:
    """Every file below ``loc``, hidden ones included."""
    return [rel for rel, _ in all_files(loc)]


def visible(loc: Location) -> list[str]:
    return [f.relative_to(loc) for f in list_files(loc)] if exists(loc) else []
