"""hanet.io.location: parsing paths and URIs, credentials carried to Ray workers, the
overlap check; on the local disk and on a real, credential-checking S3 server (SeaweedFS)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from s3server import S3Server  # tests/ is on sys.path (conftest.py)

from hanet.io.location import Location, parse_location, within
from hanet.io.storage import (
    read_bytes,
    write_bytes_atomic,
    write_text_atomic,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("no_ambient_aws")


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


@pytest.mark.s3
def test_server_enforces_credentials(s3_server: S3Server, s3_root: Location) -> None:
    from botocore.exceptions import ClientError

    write_bytes_atomic(s3_root.join("x.bin"), b"x")
    key = s3_root.join("x.bin").path.split("/", 1)[1]
    with pytest.raises(ClientError) as denied:
        s3_server.client(secret_key="not-the-secret").get_object(Bucket=s3_root.bucket, Key=key)
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


_CHILD = """
import os, pickle, sys
import pyarrow.fs as pafs
from hanet.io.storage import read_bytes
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


def test_within_is_the_one_overlap_check(tmp_path: Path) -> None:
    base = parse_location(tmp_path / "corpus")
    assert within(base, base) and within(base.join("a/b.npz"), base)
    assert not within(parse_location(tmp_path / "corpus-refined"), base)  # a prefix, not a child
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert within(parse_location(tmp_path / "link" / "x"), parse_location(tmp_path / "real"))
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    one = parse_location("s3://b/data", env=env)
    assert within(parse_location("s3://b/data/x", env=env), one)
    other = parse_location("s3://b/data/x", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:2"})
    assert not within(other, one) and not within(parse_location(tmp_path / "b/data"), one)
