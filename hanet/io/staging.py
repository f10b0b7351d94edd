"""Staged output folders: written hidden, published whole with their manifest last.

The contract for readers: **an output folder is complete if and only if its manifest exists**.
:func:`read_manifest` is the one manifest reader for every kind of output (datasets, refined
corpora, runs).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from hanet.errors import UserError
from hanet.io.location import Location
from hanet.io.storage import (
    all_files,
    delete_tree,
    exists,
    fsync_dir,
    hidden_sibling,
    is_file,
    read_text,
    write_text_atomic,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MANIFEST", "ManifestError", "StagedDirectory", "is_committed", "read_manifest"]

DEFAULT_MANIFEST = "manifest.json"


class ManifestError(UserError, ValueError):
    """A manifest exists but is not a JSON object; the message names it."""


def read_manifest(target: Location, manifest_name: str = DEFAULT_MANIFEST) -> dict[str, Any] | None:
    """The manifest of a committed output folder, or ``None`` if it is not (yet) complete.

    Raises:
        ManifestError: the manifest is not valid JSON or not a JSON object.
    """
    where = target.join(manifest_name)
    try:
        text = read_text(where)
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ManifestError(f"{where.uri}: not a valid manifest ({err})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where.uri}: not a valid manifest (not a JSON object)")
    return manifest


def is_committed(target: Location, manifest_name: str = DEFAULT_MANIFEST) -> bool:
    """True if ``target`` holds a complete output, i.e. its manifest exists."""
    return exists(target.join(manifest_name))


class StagedDirectory:
    """Write an output directory so that it only ever appears complete.

    Writers put files below :attr:`staging` (any layout, subdirectories allowed; the
    ``Location`` pickles, so Ray tasks can write there too), then one process calls
    :meth:`commit`. The contract for readers: **an output is complete if and only if its
    manifest exists**; the manifest is always the last thing published.

    The staging directory is a hidden sibling of the target,
    ``<parent>/.<name>.staging-<uuid>``, so a reader listing the target never sees partial
    files, and :func:`list_files` / Ray Data skip it in the parent since it starts with ``.``.
    (A staging folder inside the target would make the target exist before it is complete.)
    The target therefore cannot be ``/`` or a bare bucket, and on S3 the credentials need write
    access to the target's parent prefix.

    Commit replaces the target's previous content entirely (stale shards of an earlier run
    must not survive next to the new ones):

    - Local: the manifest is written into the staging directory, then the staging directory is
      renamed to the target (an old target is first renamed aside and deleted afterwards), so
      the new content appears all at once, manifest included.
    - S3 has no rename: the old manifest is deleted first (the output is now "incomplete"),
      the staged objects are copied server-side into the target, leftovers of the previous
      output are deleted, the manifest is written (the commit point), and the staging prefix
      is deleted. During the commit a reader can see new objects without a manifest, which the
      contract tells it to treat as incomplete. A crash mid-commit leaves the target without
      a manifest and the staging prefix in place; rerunning the stage repairs both.

    Leaving a ``with`` block with an exception, or without committing, aborts: the staging
    directory is removed and the target is left untouched. One writer per target at a time.

    Example:
        with StagedDirectory(out) as staged:
            write_bytes_staged(staged.staging.join("part-0.bin"), data)
            staged.commit("manifest.json", {"rows": 10})
    """

    def __init__(self, target: Location) -> None:
        """Reserve a fresh staging directory next to ``target``.

        Raises:
            ValueError: ``target`` is a root (``/`` or a bare bucket).
        """
        if target.is_root:
            raise ValueError(f"{target.uri}: a staged output needs a parent directory")
        self.target = target
        self.staging = target.parent.join(f".{target.name}.staging-{uuid.uuid4().hex}")
        self._state: Literal["open", "committed", "aborted"] = "open"
        if self.staging.scheme == "file":
            # Local writers (pyarrow, numpy) expect the directory to exist; S3 has no folders.
            os.makedirs(self.staging.path)

    @property
    def state(self) -> str:
        """``"open"``, ``"committed"`` or ``"aborted"``."""
        return self._state

    def __enter__(self) -> StagedDirectory:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            log.warning("%s: staged output left without commit; discarded", self.target.uri)
        try:
            self.abort()
        except Exception:  # never mask the exception that got us here
            log.exception("%s: could not remove staging %s", self.target.uri, self.staging.uri)
            if exc_type is None:
                raise

    def commit(
        self, manifest_name: str = DEFAULT_MANIFEST, manifest: Mapping[str, Any] | None = None
    ) -> Location:
        """Publish the staged files as the target, writing the manifest last.

        Args:
            manifest_name: File name of the manifest at the top of the target.
            manifest: JSON-serialisable content of the manifest. Unless it has a ``"files"``
                key, a sorted list of ``{"path", "size"}`` of every staged file is added, so a
                reader can check it sees everything.

        Returns:
            The location of the written manifest.

        Raises:
            RuntimeError: Already committed or aborted.
            TypeError: The arguments are swapped (the name comes first).
            ValueError: A staged file has the manifest's name.
        """
        if not isinstance(manifest_name, str) or not (
            manifest is None or isinstance(manifest, Mapping)
        ):
            raise TypeError("commit(manifest_name: str, manifest: Mapping | None)")
        if self._state != "open":
            raise RuntimeError(f"{self.target.uri}: staged output already {self._state}")
        files = all_files(self.staging)
        if any(rel == manifest_name for rel, _ in files):
            raise ValueError(f"{self.staging.uri}: a staged file is named {manifest_name!r}")
        content = dict(manifest or {})
        content.setdefault("files", [{"path": rel, "size": size} for rel, size in files])
        text = json.dumps(content, indent=2, sort_keys=True) + "\n"
        if self.target.scheme == "file":
            self._commit_local(text, manifest_name)
        else:
            self._commit_s3([rel for rel, _ in files], text, manifest_name)
        self._state = "committed"
        return self.target.join(manifest_name)

    def _commit_local(self, manifest_text: str, manifest_name: str) -> None:
        # Files written with write_bytes_staged leave their folders' entries to be made
        # durable here, once per folder, before the manifest can say they are complete.
        for folder, _, _ in os.walk(self.staging.path):
            fsync_dir(folder)
        write_text_atomic(self.staging.join(manifest_name), manifest_text)
        target, staging = self.target.path, self.staging.path
        if not os.path.lexists(target):
            os.rename(staging, target)
        elif os.path.isdir(target) and not os.path.islink(target):
            trash = hidden_sibling(self.target, "old").path
            os.rename(target, trash)
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(trash, target)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            raise FileExistsError(f"{target}: exists and is not a directory")
        fsync_dir(self.target.parent.path)

    def _commit_s3(self, rels: list[str], manifest_text: str, manifest_name: str) -> None:
        fs = self.target.filesystem()
        manifest = self.target.join(manifest_name)
        if is_file(self.target):
            raise FileExistsError(f"{self.target.uri}: exists and is not a directory")
        if exists(manifest):
            fs.delete_file(manifest.path)  # from here on the old output reads as incomplete
        for rel in rels:
            fs.copy_file(self.staging.join(rel).path, self.target.join(rel).path)
        new = set(rels)
        for rel, _ in all_files(self.target):
            if rel not in new:
                fs.delete_file(self.target.join(rel).path)
        write_text_atomic(manifest, manifest_text)  # the commit point
        delete_tree(self.staging)

    def abort(self) -> None:
        """Discard the staged files; the target is not touched. Safe to call twice.

        Raises:
            RuntimeError: Already committed.
        """
        if self._state == "committed":
            raise RuntimeError(f"{self.target.uri}: already committed")
        self._state = "aborted"
        delete_tree(self.staging)
