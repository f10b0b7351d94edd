"""hanet.io.storage on the local disk and on a real, credential-checking S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from listing import visible

from hanet.io.location import Location, parse_location
from hanet.io.staging import StagedDirectory
from hanet.io.storage import (
    copy_file,
    delete_tree,
    exists,
    fingerprint,
    hidden_sibling,
    is_dir,
    list_files,
    make_durable,
    open_input,
    read_bytes,
    read_text,
    remove_temporaries,
    subfolders,
    write_bytes_atomic,
    write_bytes_staged,
    write_text_atomic,
)

pytestmark = pytest.mark.usefixtures("no_ambient_aws")


# --------------------------------------------------------------------------- Location


# --------------------------------------------------------------------------- helpers, both backends


def test_bytes_text_round_trip(root: Location) -> None:
    target = root.join("sub", "blob.bin")
    assert not exists(target) and not exists(root)
    write_bytes_atomic(target, b"\x00\x01hello")
    assert read_bytes(target) == b"\x00\x01hello"
    assert exists(target) and not is_dir(target) and is_dir(root.join("sub"))
    write_bytes_atomic(target, b"replaced")  # overwrite in place
    assert read_bytes(target) == b"replaced"
    write_text_atomic(root.join("t.txt"), "héllo\n")
    assert read_text(root.join("t.txt")) == "héllo\n"
    assert visible(root) == ["sub/blob.bin", "t.txt"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="missing"):
        read_bytes(root.join("missing"))


def test_list_files(root: Location) -> None:
    for rel in ("b.parquet", "a.PARQUET", "x/c.parquet", "x/y/d.json", ".hidden", "_SUCCESS"):
        write_bytes_atomic(root.join(rel), b"1")
    write_bytes_atomic(root.join(".stage-1/e.parquet"), b"1")
    write_bytes_atomic(root.join("x/_tmp/f.parquet"), b"1")
    assert visible(root) == ["a.PARQUET", "b.parquet", "x/c.parquet", "x/y/d.json"]
    listed = list_files(root, suffixes=(".parquet",))
    assert [f.name for f in listed] == ["a.PARQUET", "b.parquet", "c.parquet"]
    assert all(f.filesystem() is root.filesystem() for f in listed)  # same settings carried
    assert [f.name for f in list_files(root, recursive=False)] == ["a.PARQUET", "b.parquet"]
    assert list_files(root.join("b.parquet")) == [root.join("b.parquet")]
    assert list_files(root.join("b.parquet"), suffixes=(".json",)) == []
    with pytest.raises(FileNotFoundError):
        list_files(root.join("nothing-here"))


def test_subfolders(root: Location) -> None:
    for rel in ("b/x.bin", "a/y/z.bin", ".h/w.bin", "top.bin"):
        write_bytes_atomic(root.join(rel), b"1")
    assert subfolders(root) == [".h", "a", "b"]
    assert subfolders(root.join("a")) == ["y"]
    assert subfolders(root.join("top.bin")) == [] and subfolders(root.join("none")) == []


def test_delete_tree(root: Location) -> None:
    write_bytes_atomic(root.join("d/e/f.bin"), b"1")
    write_bytes_atomic(root.join("keep.bin"), b"1")
    assert delete_tree(root.join("d"))
    assert not exists(root.join("d/e/f.bin")) and not delete_tree(root.join("d"))
    assert delete_tree(root.join("keep.bin")) and not exists(root.join("keep.bin"))
    top = root.parent if root.scheme == "s3" else Location("file", "/")
    assert top.is_root
    with pytest.raises(ValueError):
        delete_tree(top)


def test_copy_open_input_fingerprint(root: Location, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, poses=np.arange(24.0).reshape(2, 4, 3))
    src = root.join("in/poses.npz")
    write_bytes_atomic(src, buffer.getvalue())
    with open_input(src) as handle, np.load(handle) as arrays:  # seekable, as zipfile needs
        np.testing.assert_array_equal(arrays["poses"], np.arange(24.0).reshape(2, 4, 3))

    copy_file(src, root.join("out/copy.npz"))  # same filesystem (server-side copy on S3)
    local = parse_location(tmp_path / "cross" / "copy.npz")
    copy_file(src, local)  # across filesystems when root is S3
    back = root.join("back.npz")
    copy_file(local, back)
    for copy in (root.join("out/copy.npz"), local, back):
        assert read_bytes(copy) == buffer.getvalue()
        assert fingerprint(copy) == fingerprint(src)  # content only, not place or time
    assert fingerprint(src).startswith("sha256:")
    with pytest.raises(FileNotFoundError):
        copy_file(root.join("absent"), root.join("never"))
    assert not exists(root.join("never"))


def test_fingerprint_large_files_are_sampled(root: Location) -> None:
    size = 3 * 1024 * 1024 + 17
    data = bytearray(os.urandom(size))
    write_bytes_atomic(root.join("big"), data)
    first = fingerprint(root.join("big"), full_hash_limit=1024)
    assert first.startswith(f"sha256-sampled:{size}:")
    assert fingerprint(root.join("big"), full_hash_limit=1024) == first
    data[-1] ^= 0xFF  # a change in the tail block
    write_bytes_atomic(root.join("big"), data)
    assert fingerprint(root.join("big"), full_hash_limit=1024) != first
    assert fingerprint(root.join("big")).startswith("sha256:")


def test_local_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = parse_location(tmp_path / "out.bin")
    write_bytes_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, object())  # type: ignore[arg-type]
    assert read_bytes(target) == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def _synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every fsync (files and folders), still syncing them."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name an fd")
def test_unsynced_writes_are_made_durable_once_per_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _synced_paths(monkeypatch)
    root = parse_location(tmp_path)
    # Durable by default: the temporary before its rename, then the folder (the rename).
    write_bytes_atomic(root.join("a.bin"), b"a")
    assert len(synced) == 2 and synced[1] == str(tmp_path)
    assert os.path.basename(synced[0]).startswith(".a.bin.tmp")
    synced.clear()
    targets = [root.join("b.bin"), root.join("c.bin"), root.join("sub/d.bin")]
    for loc in targets:
        write_bytes_atomic(loc, b"x", durable=False)
    assert synced == [] and [read_bytes(loc) for loc in targets] == [b"x"] * 3
    make_durable([*targets, parse_location("s3://bucket/e.bin")])  # S3: nothing to sync
    assert synced == [
        *(str(tmp_path / name) for name in ("b.bin", "c.bin", "sub/d.bin")),
        str(tmp_path),
        str(tmp_path / "sub"),
    ]
    with pytest.raises(FileNotFoundError):
        make_durable([root.join("never-written.bin")])
    # On threads: every file synced (in any order), each before the folders.
    synced.clear()
    many = [root.join(f"many/{i}.bin") for i in range(12)]
    for loc in many:
        write_bytes_atomic(loc, b"y", durable=False)
    make_durable(many, threads=4)
    assert sorted(synced[:-1]) == sorted(loc.path for loc in many)
    assert synced[-1] == str(tmp_path / "many")
    with pytest.raises(FileNotFoundError):
        make_durable([*many, root.join("many/never-written.bin")], threads=4)


def test_the_temporaries_a_killed_writer_left_are_removed_and_nothing_else(
    tmp_path: Path,
) -> None:
    root = parse_location(tmp_path)
    for rel in ("a/x.parquet", "_done/a/x.parquet.json", ".staging/part-0.parquet"):
        write_bytes_atomic(root.join(rel), b"kept")
    # An atomic write killed before its rename: the content half written, the name hidden.
    stale = hidden_sibling(root.join("_done/a/y.parquet.json"), "tmp")
    Path(stale.path).write_bytes(b'{"inp')
    assert remove_temporaries(root) == [stale.relative_to(root)]
    assert sorted(os.listdir(tmp_path / "_done" / "a")) == ["x.parquet.json"]
    assert [read_bytes(root.join(r)) for r in ("a/x.parquet", ".staging/part-0.parquet")] == [
        b"kept",
        b"kept",
    ]
    assert remove_temporaries(root) == []


def test_a_staged_write_rewrites_the_whole_file_under_its_final_name(tmp_path: Path) -> None:
    """A task run again after a crash rewrites its staged files: a longer first attempt must
    leave no tail, and no temporary names are ever left in the staging folder."""
    with StagedDirectory(parse_location(tmp_path / "out")) as staged:
        part = staged.staging.join("windows", "train", "part-0.parquet")
        write_bytes_staged(part, b"first attempt, longer")
        write_bytes_staged(part, b"second")
        assert read_bytes(part) == b"second"
        assert os.listdir(os.path.dirname(part.path)) == ["part-0.parquet"]
        staged.commit("manifest.json", {})
    committed = tmp_path / "out" / "windows" / "train" / "part-0.parquet"
    assert read_bytes(parse_location(committed)) == b"second"


# --------------------------------------------------------------------------- StagedDirectory


# --------------------------------------------------------------------------- S3 specifics


@pytest.mark.s3
def test_parquet_through_filesystem(s3_root: Location) -> None:
    table = pa.table({"frame": np.arange(5, dtype=np.int32), "x": np.linspace(0, 1, 5)})
    target = s3_root.join("seq", "part-0.parquet")
    pq.write_table(table, target.path, filesystem=target.filesystem())
    assert pq.read_table(target.path, filesystem=target.filesystem()).equals(table)
    with open_input(target) as handle:
        assert pq.read_table(handle).equals(table)
    assert pq.read_metadata(open_input(target)).num_rows == 5
