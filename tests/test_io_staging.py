"""hanet.io.staging: staged output folders published whole with the manifest last, locally
and on S3, and the one manifest reader."""

from __future__ import annotations

import json

import pytest
from listing import all_names, visible

from hanet.io import staging
from hanet.io.location import Location
from hanet.io.staging import StagedDirectory, is_committed, read_manifest
from hanet.io.storage import (
    exists,
    read_bytes,
    read_text,
    write_bytes_atomic,
)

pytestmark = pytest.mark.usefixtures("no_ambient_aws")


def _stage_files(staged: StagedDirectory, names: dict[str, bytes]) -> None:
    for rel, data in names.items():
        write_bytes_atomic(staged.staging.join(rel), data)


def test_staged_commit_appears_whole_with_manifest_last(
    root: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = root.join("dataset")
    with StagedDirectory(target) as staged:
        assert staged.staging.parent == target.parent
        assert staged.staging.name.startswith(".dataset.staging-")
        _stage_files(staged, {"part-0.bin": b"0", "sub/part-1.bin": b"11"})
        # Nothing is visible before the commit, in the target or in a listing of its parent.
        assert not exists(target) and visible(root) == []

        seen: list[tuple[list[str], bool]] = []
        real_write = staging.write_text_atomic

        def spy(loc: Location, text: str, encoding: str = "utf-8") -> None:
            if loc.name == "manifest.json":  # record the target as the manifest is written
                seen.append((visible(target), is_committed(target)))
            real_write(loc, text, encoding)

        monkeypatch.setattr(staging, "write_text_atomic", spy)
        manifest_loc = staged.commit(manifest={"rows": 3})
    assert staged.state == "committed"
    # S3 copies the data first and writes the manifest last; locally the manifest is written
    # into the staging directory, which then becomes the target in one rename.
    expected_before = ["part-0.bin", "sub/part-1.bin"] if root.scheme == "s3" else []
    assert seen == [(expected_before, False)]
    assert manifest_loc == target.join("manifest.json") and is_committed(target)
    manifest = read_manifest(target)
    assert manifest == {
        "rows": 3,
        "files": [{"path": "part-0.bin", "size": 1}, {"path": "sub/part-1.bin", "size": 2}],
    }
    assert visible(target) == ["manifest.json", "part-0.bin", "sub/part-1.bin"]
    # Nothing else next to the target: the staging directory is gone.
    assert visible(root) == [f"dataset/{rel}" for rel in visible(target)]
    assert not exists(staged.staging)
    assert read_bytes(target.join("sub/part-1.bin")) == b"11"


def test_staged_recommit_replaces_old_output(root: Location) -> None:
    target = root.join("out")
    with StagedDirectory(target) as staged:
        _stage_files(staged, {"a.bin": b"old", "stale.bin": b"old"})
        staged.commit("_MANIFEST.json", {"run": 1})
    with StagedDirectory(target) as staged:
        _stage_files(staged, {"a.bin": b"new"})
        staged.commit("_MANIFEST.json", {"run": 2})
    assert read_manifest(target, "_MANIFEST.json")["run"] == 2
    assert not is_committed(target)  # default name: no such manifest
    assert visible(target) == ["a.bin"]  # the manifest's "_" name is hidden from listings
    assert read_bytes(target.join("a.bin")) == b"new" and not exists(target.join("stale.bin"))
    assert visible(root) == ["out/a.bin"]  # no staging or old-output leftovers next to it
    assert [e for e in all_names(root) if not e.startswith("out/")] == []


def test_staged_exception_or_no_commit_aborts(root: Location) -> None:
    target = root.join("out")
    with StagedDirectory(target) as first:
        _stage_files(first, {"keep.bin": b"v1"})
        first.commit()
    with pytest.raises(RuntimeError, match="boom"), StagedDirectory(target) as staged:
        _stage_files(staged, {"keep.bin": b"v2", "new.bin": b"x"})
        raise RuntimeError("boom")
    assert staged.state == "aborted" and not exists(staged.staging)
    assert read_bytes(target.join("keep.bin")) == b"v1" and not exists(target.join("new.bin"))
    with StagedDirectory(root.join("never")) as forgotten:
        _stage_files(forgotten, {"x.bin": b"x"})
    assert forgotten.state == "aborted" and not exists(root.join("never"))
    assert not exists(forgotten.staging)
    assert visible(root) == ["out/keep.bin", "out/manifest.json"]
    with pytest.raises(RuntimeError):
        forgotten.commit()


def test_staged_rejects_misuse(root: Location) -> None:
    staged = StagedDirectory(root.join("out"))
    _stage_files(staged, {"manifest.json": b"{}"})
    with pytest.raises(ValueError, match="manifest.json"):
        staged.commit()
    with pytest.raises(TypeError):
        staged.commit({"swapped": True}, "manifest.json")  # type: ignore[arg-type]
    staged.abort()
    staged.abort()  # idempotent
    with pytest.raises(ValueError):
        StagedDirectory(Location("file", "/"))


@pytest.mark.s3
def test_s3_failed_commit_leaves_target_incomplete(
    s3_root: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = s3_root.join("out")
    with StagedDirectory(target) as staged:
        _stage_files(staged, {"a.bin": b"v1"})
        staged.commit()

    def fail(loc: Location, text: str, encoding: str = "utf-8") -> None:
        raise OSError("connection lost before the manifest")

    monkeypatch.setattr(staging, "write_text_atomic", fail)
    with pytest.raises(OSError, match="connection lost"), StagedDirectory(target) as staged:
        _stage_files(staged, {"a.bin": b"v2"})
        staged.commit()
    # The old manifest went first, so the half-replaced output never passes for complete.
    assert not is_committed(target) and read_manifest(target) is None
    assert not exists(staged.staging)


@pytest.mark.s3
def test_manifest_is_json_on_s3(s3_root: Location) -> None:
    target = s3_root.join("m")
    with StagedDirectory(target) as staged:
        staged.commit("manifest.json", {"nested": {"k": [1, 2]}})
    assert json.loads(read_text(target.join("manifest.json"))) == {
        "files": [],
        "nested": {"k": [1, 2]},
    }
