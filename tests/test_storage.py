"""hanet.storage on the local disk and on a real, credential-checking S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from s3server import S3Server  # tests/ is on sys.path (conftest.py)

from hanet import storage
from hanet.storage import (
    Location,
    StagedDirectory,
    copy_file,
    delete_tree,
    exists,
    fingerprint,
    is_committed,
    is_dir,
    list_files,
    open_input,
    parse_location,
    read_bytes,
    read_manifest,
    read_text,
    write_bytes_atomic,
    write_text_atomic,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "hanet-storage-tests"


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.make_bucket(BUCKET)


def _s3_root(server: S3Server) -> Location:
    # A fresh prefix per test: the session shares one server and one bucket.
    return parse_location(f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}", env=server.env())


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """An empty directory, on the local disk or on the loopback S3 server."""
    if request.param == "local":
        return parse_location(tmp_path / "root")
    request.getfixturevalue("s3_bucket")
    return _s3_root(request.getfixturevalue("s3_server"))


@pytest.fixture
def s3_root(s3_server: S3Server, s3_bucket: str) -> Location:
    return _s3_root(s3_server)


def _all_names(loc: Location) -> list[str]:
    """Every file below ``loc``, hidden ones included."""
    return [rel for rel, _ in storage._all_files(loc)]


def _visible(loc: Location) -> list[str]:
    return [f.relative_to(loc) for f in list_files(loc)] if exists(loc) else []


# --------------------------------------------------------------------------- Location


def test_parse_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = parse_location("data/x.npz")
    assert rel == Location("file", str(tmp_path / "data" / "x.npz"))
    assert parse_location(f"file://{tmp_path}/a/") == Location("file", f"{tmp_path}/a")
    assert parse_location(f"file://localhost{tmp_path}").path == str(tmp_path)
    assert parse_location(tmp_path).uri == str(tmp_path)
    assert parse_location(parse_location(tmp_path).uri) == parse_location(tmp_path)
    for bad in ("gs://bucket/x", "file://otherhost/x", "s3:///nokey", ""):
        with pytest.raises(ValueError):
            parse_location(bad)


def test_parse_s3_from_env() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "tok",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    loc = parse_location("s3://bucket//pre/fix/", env=env)
    assert loc.path == "bucket/pre/fix" and loc.uri == "s3://bucket/pre/fix"
    assert (loc.endpoint_override, loc.endpoint_scheme) == ("127.0.0.1:9000", "http")
    assert (loc.region, loc.access_key, loc.secret_key, loc.session_token) == (
        "eu-west-1",
        "AKID",
        "s3cr3t",
        "tok",
    )
    # The S3-specific endpoint and AWS_REGION win over the generic ones; arguments win over all.
    env |= {"AWS_ENDPOINT_URL_S3": "https://s3.example:443", "AWS_REGION": "us-west-2"}
    loc = parse_location("s3://bucket", env=env)
    assert (loc.endpoint_override, loc.endpoint_scheme, loc.region) == (
        "s3.example:443",
        "https",
        "us-west-2",
    )
    loc = parse_location("s3://b/k", env=env, endpoint_url="http://h:1", region="r")
    assert (loc.endpoint_override, loc.region) == ("h:1", "r")


def test_parse_s3_without_keys_uses_default_chain() -> None:
    loc = parse_location("s3://bucket/k", env={"AWS_SESSION_TOKEN": "stale"})
    assert loc.access_key is None and loc.secret_key is None and loc.session_token is None
    assert loc.endpoint_override is None and loc.region is None
    assert "default-chain" in repr(loc)
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        parse_location("s3://bucket/k", env={"AWS_ACCESS_KEY_ID": "AKID"})


def test_location_paths() -> None:
    loc = parse_location("s3://bucket/a", env={})
    child = loc.join("b/c", "d.parquet")
    assert child.uri == "s3://bucket/a/b/c/d.parquet"
    assert (child.name, child.suffix) == ("d.parquet", ".parquet")
    assert child.parent.parent.parent == loc and child.relative_to(loc) == "b/c/d.parquet"
    bucket = loc.parent
    assert bucket.is_root and bucket.parent == bucket and bucket.bucket == "bucket"
    local = Location("file", "/")
    assert local.join("x", ".", "y").path == "/x/y" and local.join("x").parent == local
    with pytest.raises(ValueError):
        loc.join("../escape")
    with pytest.raises(ValueError):
        loc.relative_to(Location("file", "/tmp"))


def test_location_pickles_and_repr_hides_secrets() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDVISIBLE",
        "AWS_SECRET_ACCESS_KEY": "TOPSECRETVALUE",
        "AWS_SESSION_TOKEN": "SESSIONTOKENVALUE",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
    }
    loc = parse_location("s3://bucket/prefix", env=env)
    assert pickle.loads(pickle.dumps(loc)) == loc
    for text in (repr(loc), str(loc), f"{loc}", repr([loc])):
        for secret in ("AKIDVISIBLE", "TOPSECRETVALUE", "SESSIONTOKENVALUE"):
            assert secret not in text
    assert "s3://bucket/prefix" in repr(loc) and "explicit" in repr(loc)


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
    assert _visible(root) == ["sub/blob.bin", "t.txt"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="missing"):
        read_bytes(root.join("missing"))


def test_list_files(root: Location) -> None:
    for rel in ("b.parquet", "a.PARQUET", "x/c.parquet", "x/y/d.json", ".hidden", "_SUCCESS"):
        write_bytes_atomic(root.join(rel), b"1")
    write_bytes_atomic(root.join(".stage-1/e.parquet"), b"1")
    write_bytes_atomic(root.join("x/_tmp/f.parquet"), b"1")
    assert _visible(root) == ["a.PARQUET", "b.parquet", "x/c.parquet", "x/y/d.json"]
    listed = list_files(root, suffixes=(".parquet",))
    assert [f.name for f in listed] == ["a.PARQUET", "b.parquet", "c.parquet"]
    assert all(f.filesystem() is root.filesystem() for f in listed)  # same settings carried
    assert [f.name for f in list_files(root, recursive=False)] == ["a.PARQUET", "b.parquet"]
    assert list_files(root.join("b.parquet")) == [root.join("b.parquet")]
    assert list_files(root.join("b.parquet"), suffixes=(".json",)) == []
    with pytest.raises(FileNotFoundError):
        list_files(root.join("nothing-here"))


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


# --------------------------------------------------------------------------- StagedDirectory


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
        assert not exists(target) and _visible(root) == []

        seen: list[tuple[list[str], bool]] = []
        real_write = storage.write_text_atomic

        def spy(loc: Location, text: str, encoding: str = "utf-8") -> None:
            if loc.name == "manifest.json":  # record the target as the manifest is written
                seen.append((_visible(target), is_committed(target)))
            real_write(loc, text, encoding)

        monkeypatch.setattr(storage, "write_text_atomic", spy)
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
    assert _visible(target) == ["manifest.json", "part-0.bin", "sub/part-1.bin"]
    # Nothing else next to the target: the staging directory is gone.
    assert _visible(root) == [f"dataset/{rel}" for rel in _visible(target)]
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
    assert _visible(target) == ["a.bin"]  # the manifest's "_" name is hidden from listings
    assert read_bytes(target.join("a.bin")) == b"new" and not exists(target.join("stale.bin"))
    assert _visible(root) == ["out/a.bin"]  # no staging or old-output leftovers next to it
    assert [e for e in _all_names(root) if not e.startswith("out/")] == []


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
    assert _visible(root) == ["out/keep.bin", "out/manifest.json"]
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

    monkeypatch.setattr(storage, "write_text_atomic", fail)
    with pytest.raises(OSError, match="connection lost"), StagedDirectory(target) as staged:
        _stage_files(staged, {"a.bin": b"v2"})
        staged.commit()
    # The old manifest went first, so the half-replaced output never passes for complete.
    assert not is_committed(target) and read_manifest(target) is None
    assert not exists(staged.staging)


# --------------------------------------------------------------------------- S3 specifics


@pytest.mark.s3
def test_server_enforces_credentials(s3_server: S3Server, s3_root: Location) -> None:
    from botocore.exceptions import ClientError

    write_bytes_atomic(s3_root.join("x.bin"), b"x")
    key = s3_root.join("x.bin").path.split("/", 1)[1]
    with pytest.raises(ClientError) as denied:
        s3_server.client(secret_key="not-the-secret").get_object(Bucket=BUCKET, Key=key)
    assert denied.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
    wrong = Location(
        "s3",
        s3_root.join("x.bin").path,
        endpoint_override=s3_root.endpoint_override,
        region=s3_root.region,
        endpoint_scheme=s3_root.endpoint_scheme,
        access_key=s3_root.access_key,
        secret_key="not-the-secret",
    )
    with pytest.raises(OSError):
        read_bytes(wrong)
    assert read_bytes(s3_root.join("x.bin")) == b"x"


@pytest.mark.s3
def test_parquet_through_filesystem(s3_root: Location) -> None:
    table = pa.table({"frame": np.arange(5, dtype=np.int32), "x": np.linspace(0, 1, 5)})
    target = s3_root.join("seq", "part-0.parquet")
    pq.write_table(table, target.path, filesystem=target.filesystem())
    assert pq.read_table(target.path, filesystem=target.filesystem()).equals(table)
    with open_input(target) as handle:
        assert pq.read_table(handle).equals(table)
    assert pq.read_metadata(open_input(target)).num_rows == 5


_CHILD = """
import os, pickle, sys
import pyarrow.fs as pafs
from hanet.storage import read_bytes
assert not any(k.startswith("AWS_") and k != "AWS_EC2_METADATA_DISABLED" for k in os.environ)
loc, driver_default_fs, driver_loc_fs = pickle.loads(sys.stdin.buffer.read())
print("location", read_bytes(loc).decode())
print("location-fs", driver_loc_fs.open_input_stream(loc.path).readall().decode())
try:
    driver_default_fs.open_input_stream(loc.path).readall()
    print("default-fs read")
except OSError as err:
    print("default-fs denied", "ACCESS_DENIED" in str(err))
"""


@pytest.mark.s3
def test_credentials_survive_pickling_into_empty_environment(
    s3_server: S3Server, s3_root: Location, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Ray worker trap: keys only in the driver's environment do not reach a worker."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    loc = parse_location(f"{s3_root.uri}/shared.txt")  # resolved from os.environ, as in a driver
    write_text_atomic(loc, "hello worker")
    # What a driver gets from pyarrow's default chain: endpoint yes, keys not in the pickle.
    default_fs = pafs.S3FileSystem(endpoint_override=loc.endpoint_override, scheme="http")
    assert default_fs.open_input_stream(loc.path).readall() == b"hello worker"  # fine here
    payload = pickle.dumps((loc, default_fs, loc.filesystem()))

    minimal_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),  # no ~/.aws of the real user
        "PYTHONPATH": str(REPO_ROOT),
        # Not a credential: stops the SDK from probing the instance-metadata address.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=payload,
        env=minimal_env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "location hello worker" in out and "location-fs hello worker" in out
    assert "default-fs denied True" in out
    assert s3_server.secret_key not in out + result.stderr.decode()


@pytest.mark.s3
def test_manifest_is_json_on_s3(s3_root: Location) -> None:
    target = s3_root.join("m")
    with StagedDirectory(target) as staged:
        staged.commit("manifest.json", {"nested": {"k": [1, 2]}})
    assert json.loads(read_text(target.join("manifest.json"))) == {
        "files": [],
        "nested": {"k": [1, 2]},
    }


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The developer's own AWS settings must not leak into these tests.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    yield
