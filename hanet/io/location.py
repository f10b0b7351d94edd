"""Where bytes live: a local folder or an ``s3://`` bucket, as one frozen, picklable value.

A :class:`Location` is parsed once (normally on the driver) and passed around; it can be shipped
to Ray tasks and actors as-is, and :meth:`Location.filesystem` gives the :mod:`pyarrow.fs`
filesystem to reach it.

Credentials
    S3 keys, region and endpoint are read from the standard AWS variables when a location is
    parsed (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) and
    carried inside the ``Location``. Ray workers do not inherit the driver's environment, and a
    pyarrow filesystem built from the default chain on the driver carries the endpoint but not
    the keys, so a worker would get ACCESS_DENIED from a real server; carrying the keys
    explicitly closes that trap. When the environment holds no keys, none are stored and pyarrow
    uses its default chain where the filesystem is built (profile files, instance profile, web
    identity), which is what a cluster with IAM roles wants. Consequences: a pickled
    ``Location`` contains the keys (keep it inside the cluster), and temporary session
    credentials are frozen at parse time (re-parse after they rotate). ``repr`` never shows them.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlparse

import pyarrow.fs as pafs

from hanet.errors import UserError

__all__ = ["Location", "LocationError", "parse_location", "same_store", "within"]


class LocationError(UserError, ValueError):
    """A path or URI that cannot name a location (scheme, bucket, endpoint, credentials)."""


@dataclass(frozen=True)
class Location:
    """A file or directory on the local disk or in an S3 bucket.

    Build one with :func:`parse_location` rather than by hand, so that the credentials and the
    endpoint are resolved from the environment.

    Attributes:
        scheme: ``"file"`` or ``"s3"``.
        path: For ``file``, an absolute POSIX path without a trailing slash (``/`` for the
            root). For ``s3``, ``bucket/key`` without the ``s3://`` prefix and without a
            trailing slash.
        endpoint_override: S3 only: ``host:port`` of a non-AWS endpoint, or ``None`` for AWS.
        region: S3 only: the region, or ``None`` to let pyarrow decide.
        endpoint_scheme: S3 only: ``"https"`` or ``"http"``, used to reach the endpoint.
        access_key: S3 only: explicit access key id, or ``None`` for pyarrow's default chain.
        secret_key: S3 only: explicit secret key (never shown by ``repr``).
        session_token: S3 only: session token of temporary credentials (never shown).
    """

    scheme: Literal["file", "s3"]
    path: str
    endpoint_override: str | None = None
    region: str | None = None
    endpoint_scheme: Literal["http", "https"] = "https"
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    def __post_init__(self) -> None:
        if self.scheme not in ("file", "s3"):
            raise LocationError(f"unsupported scheme {self.scheme!r} (expected 'file' or 's3')")
        if self.endpoint_scheme not in ("http", "https"):
            raise LocationError(
                f"endpoint_scheme must be 'http' or 'https', not {self.endpoint_scheme!r}"
            )
        if self.scheme == "file" and not self.path.startswith("/"):
            raise LocationError(f"local path must be absolute: {self.path!r}")
        if self.scheme == "s3" and (not self.path or self.path.startswith("/")):
            raise LocationError(f"S3 path must be 'bucket/key': {self.path!r}")
        if (self.access_key is None) != (self.secret_key is None):
            # Half a key pair would silently fall back to anonymous or default-chain access.
            raise LocationError("S3 access_key and secret_key must be given together")

    def __repr__(self) -> str:
        # Never the secrets, and not the access key id either: it identifies the account.
        if self.scheme == "file":
            return f"Location({self.uri!r})"
        creds = "explicit" if self.access_key is not None else "default-chain"
        return (
            f"Location({self.uri!r}, endpoint={self.endpoint_scheme}://"
            f"{self.endpoint_override or 'aws'}, region={self.region}, credentials={creds})"
        )

    def __str__(self) -> str:
        return self.uri

    @property
    def uri(self) -> str:
        """String form: ``s3://bucket/key`` for S3, the plain absolute path for local files.

        :func:`parse_location` reads it back (with the credentials of the current environment).
        """
        return f"s3://{self.path}" if self.scheme == "s3" else self.path

    @property
    def is_root(self) -> bool:
        """True for ``/`` and for a bare S3 bucket: these have no parent and no name."""
        return self.path == "/" if self.scheme == "file" else "/" not in self.path

    @property
    def bucket(self) -> str | None:
        """The S3 bucket, or ``None`` for a local location."""
        return self.path.split("/", 1)[0] if self.scheme == "s3" else None

    @property
    def name(self) -> str:
        """Last path component; ``""`` for a root (see :attr:`is_root`)."""
        return "" if self.is_root else posixpath.basename(self.path)

    @property
    def parent(self) -> Location:
        """The containing directory; a root is its own parent, as with :mod:`pathlib`."""
        if self.is_root:
            return self
        head = posixpath.dirname(self.path)
        return replace(self, path=head or "/")

    @property
    def suffix(self) -> str:
        """Extension of :attr:`name` including the dot, or ``""``."""
        return posixpath.splitext(self.name)[1]

    def join(self, *parts: str) -> Location:
        """Location of ``parts`` below this one (``"a/b"`` and ``"a", "b"`` are the same).

        Raises:
            ValueError: A part is ``..`` (locations never climb) or the result is empty.
        """
        pieces = [self.path.rstrip("/")] if self.path != "/" else [""]
        for part in parts:
            for piece in str(part).split("/"):
                if piece in ("", "."):
                    continue
                if piece == "..":
                    raise LocationError(f"'..' is not allowed in a location: {parts!r}")
                pieces.append(piece)
        joined = "/".join(pieces)
        return replace(self, path=joined or "/")

    def relative_to(self, other: Location) -> str:
        """This location's path below ``other`` (POSIX, no leading slash).

        Raises:
            ValueError: This location is not inside ``other``.
        """
        base = other.path.rstrip("/")
        if other.scheme != self.scheme or not self.path.startswith(base + "/"):
            raise LocationError(f"{self.uri} is not inside {other.uri}")
        return self.path[len(base) + 1 :]

    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem for this location; pass :attr:`path` to its methods.

        S3 filesystems are built with the explicit credentials when the location has them, so
        the object is also safe to hand to Ray Data / Ray Train, which pickle it to workers.
        Instances are cached per process.
        """
        if self.scheme == "file":
            return _local_fs()
        return _s3_fs(
            os.getpid(),  # never share an AWS SDK client across a fork
            self.endpoint_override,
            self.region,
            self.endpoint_scheme,
            self.access_key,
            self.secret_key,
            self.session_token,
        )


@lru_cache(maxsize=1)
def _local_fs() -> pafs.LocalFileSystem:
    return pafs.LocalFileSystem()


@lru_cache(maxsize=16)
def _s3_fs(
    _pid: int,
    endpoint_override: str | None,
    region: str | None,
    scheme: str,
    access_key: str | None,
    secret_key: str | None,
    session_token: str | None,
) -> pafs.S3FileSystem:
    kwargs: dict[str, Any] = {"scheme": scheme}
    if endpoint_override:
        kwargs["endpoint_override"] = endpoint_override
    if region:
        kwargs["region"] = region
    if access_key is not None:
        kwargs.update(access_key=access_key, secret_key=secret_key)
        if session_token:
            kwargs["session_token"] = session_token
    return pafs.S3FileSystem(**kwargs)


def parse_location(
    uri: str | os.PathLike[str] | Location,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Location:
    """Parse a local path, ``file://`` URI or ``s3://bucket/prefix`` into a :class:`Location`.

    Relative local paths are made absolute here, against the current directory of the caller,
    because Ray workers run in other directories.

    Args:
        uri: The path or URI; a ``Location`` is returned unchanged.
        endpoint_url: S3 endpoint such as ``http://127.0.0.1:8333``; overrides the environment.
        region: S3 region; overrides the environment.
        env: Environment to resolve S3 settings from; ``os.environ`` by default.

    Returns:
        The location, with S3 credentials and endpoint resolved from ``env``.

    Raises:
        ValueError: Unsupported scheme, empty bucket, or an incomplete key pair.
    """
    if isinstance(uri, Location):
        return uri
    text = os.fspath(uri)
    if not text:
        raise LocationError("empty location")
    if "://" not in text:
        return Location("file", _clean_local(text))
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise LocationError(f"{text}: file:// URIs must be local (file:///absolute/path)")
        return Location("file", _clean_local(parsed.path or "/"))
    if scheme != "s3":
        raise LocationError(
            f"{text}: unsupported scheme {scheme!r} (use a local path, file://, s3://)"
        )
    bucket = parsed.netloc
    if not bucket:
        raise LocationError(f"{text}: missing bucket (expected s3://bucket/prefix)")
    # Keep the key as written (S3 keys are not normalised) but drop empty components.
    key = "/".join(piece for piece in parsed.path.split("/") if piece)
    return _s3_location(f"{bucket}/{key}" if key else bucket, endpoint_url, region, env)


def _clean_local(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _s3_location(
    path: str, endpoint_url: str | None, region: str | None, env: Mapping[str, str] | None
) -> Location:
    env = os.environ if env is None else env
    endpoint = endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    endpoint_override, endpoint_scheme = None, "https"
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LocationError(
                f"S3 endpoint must look like http(s)://host[:port], not {endpoint!r}"
            )
        endpoint_override, endpoint_scheme = parsed.netloc, parsed.scheme
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region is None and endpoint_override is not None:
        # Non-AWS servers ignore the region but signatures need one; AWS SDKs use this default.
        region = "us-east-1"
    access_key = env.get("AWS_ACCESS_KEY_ID") or None
    secret_key = env.get("AWS_SECRET_ACCESS_KEY") or None
    if (access_key is None) != (secret_key is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret_key is None else "AWS_ACCESS_KEY_ID"
        raise LocationError(f"{missing} is not set although its partner is")
    session_token = (env.get("AWS_SESSION_TOKEN") or None) if access_key else None
    return Location(
        "s3",
        path,
        endpoint_override=endpoint_override,
        region=region,
        endpoint_scheme=endpoint_scheme,  # type: ignore[arg-type]
        access_key=access_key,
        secret_key=secret_key,
        session_token=session_token,
    )


def same_store(a: Location, b: Location) -> bool:
    """True if both are on the same disk or S3 endpoint (equal paths then name one object)."""
    return a.scheme == b.scheme and a.endpoint_override == b.endpoint_override


def _real(loc: Location) -> str:
    return os.path.realpath(loc.path) if loc.scheme == "file" else loc.path.rstrip("/")


def within(inner: Location, outer: Location) -> bool:
    """True if ``inner`` is ``outer`` or lies below it (symlinks resolved for local paths).

    The one overlap check: an output that lies in its input (or the reverse) would be read back
    as input on the next run, or replace the input when it is committed.
    """
    if not same_store(inner, outer):
        return False
    a, b = _real(inner), _real(outer)
    return a == b or a.startswith(b.rstrip("/") + "/")
