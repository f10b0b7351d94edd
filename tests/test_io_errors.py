"""hanet.io.errors: what the object store says becomes one clear error naming the URI and the
endpoint, never a credential; checked against the real, credential-checking loopback server."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
from s3server import S3Server

from hanet.errors import UserError
from hanet.formats.dispatch import read_any
from hanet.io.errors import (
    AccessDenied,
    EndpointUnreachable,
    NoSuchBucket,
    StorageError,
    translate,
)
from hanet.io.location import Location, parse_location
from hanet.io.storage import (
    exists,
    fingerprint,
    list_files,
    open_input,
    read_bytes,
    write_bytes_atomic,
)

pytestmark = pytest.mark.usefixtures("no_ambient_aws")

S3 = parse_location("s3://bucket/key.npz", endpoint_url="http://127.0.0.1:9")

# What pyarrow 26 says for each failure (copied from real runs against the loopback server).
PYARROW_TEXTS = {
    AccessDenied: [
        "When reading information for key 'key.npz' in bucket 'bucket': AWS Error "
        "ACCESS_DENIED during HeadObject operation: No response body.",
        "When initiating multiple part upload for key 'key.npz' in bucket 'bucket': AWS Error "
        "SIGNATURE_DOES_NOT_MATCH during CreateMultipartUpload operation: The request signature "
        "we calculated does not match the signature you provided.",
        "AWS Error EXPIRED_TOKEN during GetObject operation: The provided token has expired.",
    ],
    NoSuchBucket: ["AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation: no such bucket"],
    EndpointUnreachable: [
        "When getting information for key 'key.npz' in bucket 'bucket': AWS Error "
        "NETWORK_CONNECTION during HeadObject operation: curlCode: 7, Could not connect to "
        "server; Details: Failed to connect to 127.0.0.1:9 after 0 ms: Could not connect",
        "AWS Error SLOW_DOWN during PutObject operation: Please reduce your request rate.",
        "AWS Error UNKNOWN (HTTP status 0) during GetObject operation: curlCode: 28, Timeout "
        "was reached",
        "AWS Error UNKNOWN (HTTP status 503) during HeadObject operation: No response body.",
        "AWS Error UNKNOWN (HTTP status 500) during PutObject operation: all filers failed",
    ],
}


@pytest.mark.parametrize(
    ("kind", "text"), [(kind, text) for kind, texts in PYARROW_TEXTS.items() for text in texts]
)
def test_each_kind_of_s3_failure_is_recognised(kind: type, text: str) -> None:
    err = translate(OSError(text), S3)
    assert type(err) is kind and isinstance(err, UserError) and isinstance(err, OSError)
    assert str(err).startswith("s3://bucket/key.npz: ") and "http://127.0.0.1:9" in str(err)
    assert err.transient == (kind is EndpointUnreachable)


def test_other_errors_are_left_alone() -> None:
    unknown = OSError("AWS Error INVALID_RANGE during GetObject operation")
    assert translate(unknown, S3) is unknown
    local = PermissionError(13, "Permission denied")
    assert translate(local, parse_location("/tmp/x")) is local
    bug = KeyError("x")
    assert translate(bug, S3) is bug
    done = AccessDenied("s3://bucket/key.npz: access denied")
    assert translate(done, S3) is done


def _wrong_secret(location: Location) -> Location:
    return replace(location, secret_key="not-the-secret-0123456789")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.s3
def test_wrong_credentials_are_access_denied_without_the_secret(
    s3_server: S3Server, s3_root: Location
) -> None:
    target = s3_root.join("data/x.bin")
    write_bytes_atomic(target, b"x")
    wrong = _wrong_secret(target)
    operations = {
        "read": lambda: read_bytes(wrong),
        "open": lambda: open_input(wrong),
        "list": lambda: list_files(wrong.parent),
        "exists": lambda: exists(wrong),
        "fingerprint": lambda: fingerprint(wrong),
        "write": lambda: write_bytes_atomic(wrong, b"y"),
    }
    for name, operation in operations.items():
        with pytest.raises(AccessDenied) as err:
            operation()
        message = str(err.value)
        assert message.startswith(f"{wrong.parent.uri if name == 'list' else wrong.uri}: ")
        assert f"access denied by {s3_server.endpoint}" in message, name
        for secret in (s3_server.secret_key, s3_server.access_key, "not-the-secret"):
            assert secret not in message, name
    assert read_bytes(target) == b"x"  # the refused write changed nothing


@pytest.mark.s3
def test_missing_bucket_names_the_bucket(s3_server: S3Server) -> None:
    location = parse_location("s3://hanet-no-such-bucket/a/b.parquet", env=s3_server.env())
    for operation in (read_bytes, open_input, list_files):
        with pytest.raises(NoSuchBucket) as err:
            operation(location)
        assert str(err.value) == (
            f"s3://hanet-no-such-bucket/a/b.parquet: no such bucket 'hanet-no-such-bucket' at "
            f"{s3_server.endpoint}"
        )
        assert isinstance(err.value, FileNotFoundError)  # "not there" handling still applies


def test_unreachable_endpoint_is_transient_and_named() -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE"}
    location = parse_location("s3://bucket/in/a.npz", endpoint_url=endpoint, env=env)
    for operation in (read_bytes, lambda loc: write_bytes_atomic(loc, b"")):
        with pytest.raises(EndpointUnreachable) as err:
            operation(location)
        assert str(err.value).startswith(
            f"s3://bucket/in/a.npz: cannot reach the S3 endpoint {endpoint}"
        )
        assert err.value.transient and isinstance(err.value, StorageError)
        assert "SECRETEXAMPLE" not in str(err.value) and "AKIDEXAMPLE" not in str(err.value)


@pytest.mark.parametrize("name", ["a.parquet", "a.npz", "a.json"])
def test_readers_pass_storage_failures_through_as_they_are(name: str) -> None:
    # Not the file's fault: a reader must not turn it into "not a readable file", or the job
    # would record the object as bad instead of trying it again.
    endpoint = f"http://127.0.0.1:{_free_port()}"
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE"}
    location = parse_location(f"s3://bucket/in/{name}", endpoint_url=endpoint, env=env)
    with pytest.raises(EndpointUnreachable):
        read_any(location, "jhmdb", "2D", 30.0, (320, 240))
