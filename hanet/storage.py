"""Local folders and ``s3://`` buckets behind one small API, through :mod:`pyarrow.fs`.

Together with :mod:`hanet.readers`, this is the only module that touches files or object
storage. Everything else passes :class:`Location` values around; a ``Location`` is a frozen,
picklable value, so it can be shipped to Ray tasks and actors as-is.

Credentials
    A location is resolved once, where it is parsed (normally on the driver): S3 keys, region
    and endpoint are read from the standard AWS variables then (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) and carried inside the ``Location``. Ray
    workers do not inherit the driver's environment, and a pyarrow filesystem built from the
    default chain on the driver carries the endpoint but not the keys, so a worker would get
    ACCESS_DENIED from a real server; carrying the keys explicitly closes that trap. When the
    environment holds no keys, none are stored and pyarrow uses its default chain where the
    filesystem is built (profile files, instance profile, web identity), which is what a cluster
    with IAM roles wants. Consequences: a pickled ``Location`` contains the keys (keep it inside
    the cluster), and temporary session credentials are frozen at parse time (re-parse after
    they rotate). ``repr`` never shows them.

Atomicity
    :func:`write_bytes_atomic` makes a file appear complete or not at all. A whole output
    directory is written through :class:`StagedDirectory`: writers fill a hidden sibling staging
    directory and :meth:`StagedDirectory.commit` publishes it with the manifest last, so an
    output is complete if and only if its manifest exists (see the class for the S3 details).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

log = logging.getLogger(__name__)

__all__ = [
    "Location",
    "StagedDirectory",
    "copy_file",
    "delete_tree",
    "exists",
    "fingerprint",
    "is_committed",
    "is_dir",
    "is_file",
    "list_files",
    "open_input",
    "parse_location",
    "read_bytes",
    "read_manifest",
    "read_text",
    "write_bytes_atomic",
    "write_text_atomic",
]

DEFAULT_MANIFEST = "manifest.json"
# Below this size a fingerprint hashes the whole content; above it, a sample (see fingerprint).
FULL_HASH_LIMIT = 64 * 1024 * 1024
_SAMPLE_BLOCK = 1024 * 1024
_COPY_CHUNK = 8 * 1024 * 1024


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
            raise ValueError(f"unsupported scheme {self.scheme!r} (expected 'file' or 's3')")
        if self.endpoint_scheme not in ("http", "https"):
            raise ValueError(
                f"endpoint_scheme must be 'http' or 'https', not {self.endpoint_scheme!r}"
            )
        if self.scheme == "file" and not self.path.startswith("/"):
            raise ValueError(f"local path must be absolute: {self.path!r}")
        if self.scheme == "s3" and (not self.path or self.path.startswith("/")):
            raise ValueError(f"S3 path must be 'bucket/key': {self.path!r}")
        if (self.access_key is None) != (self.secret_key is None):
            # Half a key pair would silently fall back to anonymous or default-chain access.
            raise ValueError("S3 access_key and secret_key must be given together")

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
                    raise ValueError(f"'..' is not allowed in a location: {parts!r}")
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
            raise ValueError(f"{self.uri} is not inside {other.uri}")
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
        raise ValueError("empty location")
    if "://" not in text:
        return Location("file", _clean_local(text))
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{text}: file:// URIs must be local (file:///absolute/path)")
        return Location("file", _clean_local(parsed.path or "/"))
    if scheme != "s3":
        raise ValueError(
            f"{text}: unsupported scheme {scheme!r} (use a local path, file://, s3://)"
        )
    bucket = parsed.netloc
    if not bucket:
        raise ValueError(f"{text}: missing bucket (expected s3://bucket/prefix)")
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
            raise ValueError(f"S3 endpoint must look like http(s)://host[:port], not {endpoint!r}")
        endpoint_override, endpoint_scheme = parsed.netloc, parsed.scheme
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region is None and endpoint_override is not None:
        # Non-AWS servers ignore the region but signatures need one; AWS SDKs use this default.
        region = "us-east-1"
    access_key = env.get("AWS_ACCESS_KEY_ID") or None
    secret_key = env.get("AWS_SECRET_ACCESS_KEY") or None
    if (access_key is None) != (secret_key is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret_key is None else "AWS_ACCESS_KEY_ID"
        raise ValueError(f"{missing} is not set although its partner is")
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


# --------------------------------------------------------------------------- queries


def _info(loc: Location) -> pafs.FileInfo:
    return loc.filesystem().get_file_info(loc.path)


def exists(loc: Location) -> bool:
    """True if a file or a directory (on S3: any object below the prefix) is there."""
    return _info(loc).type != pafs.FileType.NotFound


def is_dir(loc: Location) -> bool:
    """True if ``loc`` is a directory (on S3: a prefix with objects below it)."""
    return _info(loc).type == pafs.FileType.Directory


def is_file(loc: Location) -> bool:
    """True if ``loc`` is a regular file (an object, on S3)."""
    return _info(loc).type == pafs.FileType.File


def _hidden(rel: str) -> bool:
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def list_files(
    loc: Location, suffixes: Iterable[str] | None = None, recursive: bool = True
) -> list[Location]:
    """The files below a directory, sorted by path.

    Any file whose path below ``loc`` has a component starting with ``.`` or ``_`` is skipped:
    those are staging directories, temporary files and markers (``_SUCCESS``), never data.

    Args:
        loc: A directory, or a single file (returned alone when its suffix matches).
        suffixes: Keep only names ending with one of these (case-insensitive), e.g.
            ``(".parquet",)``; all files when ``None``.
        recursive: Descend into subdirectories.

    Returns:
        File locations carrying the same S3 settings as ``loc``.

    Raises:
        FileNotFoundError: ``loc`` does not exist.
    """
    wanted = tuple(s.lower() for s in suffixes) if suffixes is not None else None

    def keep(name: str) -> bool:
        return wanted is None or name.lower().endswith(wanted)

    info = _info(loc)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{loc.uri}: no such file or directory")
    if info.type == pafs.FileType.File:
        return [loc] if keep(loc.name) else []
    selector = pafs.FileSelector(loc.path, recursive=recursive)
    found = []
    for entry in loc.filesystem().get_file_info(selector):
        if entry.type != pafs.FileType.File:
            continue
        child = replace(loc, path=entry.path.rstrip("/"))
        if _hidden(child.relative_to(loc)) or not keep(child.name):
            continue
        found.append(child)
    return sorted(found, key=lambda c: c.path)


def _all_files(loc: Location) -> list[tuple[str, int]]:
    """Every file below ``loc`` (hidden ones too) as (relative path, size), sorted."""
    if _info(loc).type != pafs.FileType.Directory:
        return []
    out = []
    for entry in loc.filesystem().get_file_info(pafs.FileSelector(loc.path, recursive=True)):
        if entry.type == pafs.FileType.File:
            rel = replace(loc, path=entry.path.rstrip("/")).relative_to(loc)
            out.append((rel, int(entry.size)))
    return sorted(out)


# --------------------------------------------------------------------------- reading


def read_bytes(loc: Location) -> bytes:
    """The whole content of a file.

    Raises:
        FileNotFoundError: There is no such file.
    """
    try:
        with loc.filesystem().open_input_stream(loc.path) as stream:
            return stream.readall()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{loc.uri}: no such file") from err


def read_text(loc: Location, encoding: str = "utf-8") -> str:
    """The content of a text file, decoded."""
    return read_bytes(loc).decode(encoding)


def open_input(loc: Location) -> pa.NativeFile:
    """A seekable, file-like reader (``read``, ``seek``, ``tell``) for pyarrow, numpy, zipfile.

    On S3 it issues ranged GETs, so only the parts actually read are transferred. Close it
    (``with open_input(loc) as f:``) when done.
    """
    try:
        return loc.filesystem().open_input_file(loc.path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{loc.uri}: no such file") from err


# --------------------------------------------------------------------------- writing


def _temp_sibling(loc: Location, tag: str) -> Location:
    # Hidden name in the same directory: same filesystem for os.replace, skipped by listings.
    return loc.parent.join(f".{loc.name}.{tag}-{uuid.uuid4().hex[:12]}")


def _require_file_target(loc: Location) -> None:
    if loc.is_root:
        raise ValueError(f"{loc.uri}: cannot write a file at a root")


def write_bytes_atomic(loc: Location, data: bytes | bytearray | memoryview) -> None:
    """Write a file so that readers see either the old content or the complete new one.

    Local: write a hidden temporary file in the same directory, fsync, then ``os.replace``
    (atomic on POSIX). Parent directories are created. S3: a single PUT, which S3 publishes
    atomically (an object is never visible half-written).
    """
    _require_file_target(loc)
    if loc.scheme == "s3":
        with loc.filesystem().open_output_stream(loc.path) as out:
            out.write(bytes(data))
        return
    os.makedirs(loc.parent.path, exist_ok=True)
    tmp = _temp_sibling(loc, "tmp").path
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, loc.path)
    except BaseException:
        _silent_unlink(tmp)
        raise
    _fsync_dir(loc.parent.path)


def write_text_atomic(loc: Location, text: str, encoding: str = "utf-8") -> None:
    """:func:`write_bytes_atomic` for text."""
    write_bytes_atomic(loc, text.encode(encoding))


def _silent_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    # Makes the rename itself durable; best effort (not every filesystem allows it).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def delete_tree(loc: Location) -> bool:
    """Delete a file or a directory with everything below it; nothing there is fine.

    Returns:
        True if something was deleted.

    Raises:
        ValueError: ``loc`` is ``/`` or a bare bucket (deleting those is never intended).
    """
    if loc.is_root:
        raise ValueError(f"{loc.uri}: refusing to delete a root")
    info = _info(loc)
    fs = loc.filesystem()
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(loc.path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(loc.path)
    else:
        return False
    return True


def _same_fs(a: Location, b: Location) -> bool:
    """True if both locations are reached through the same endpoint with the same identity."""
    return a.scheme == b.scheme and replace(b, path=a.path) == a


def copy_file(src: Location, dst: Location) -> None:
    """Copy one file, within or across filesystems; ``dst`` appears complete or not at all.

    Same S3 endpoint and credentials: a server-side copy (CopyObject, up to 5 GB). Otherwise the
    content is streamed into a hidden temporary next to ``dst`` and then moved into place, so a
    failure half-way never leaves a partial ``dst``.
    """
    _require_file_target(dst)
    if src.scheme == "s3" and dst.scheme == "s3" and _same_fs(src, dst):
        try:
            src.filesystem().copy_file(src.path, dst.path)
        except OSError as err:
            # S3 reports a missing source as a generic error; give callers the usual type.
            if not isinstance(err, FileNotFoundError) and not is_file(src):
                raise FileNotFoundError(f"{src.uri}: no such file") from err
            raise
        return
    tmp = _temp_sibling(dst, "tmp")
    dst_fs = dst.filesystem()
    if dst.scheme == "file":
        os.makedirs(dst.parent.path, exist_ok=True)
    try:
        with open_input(src) as reader:
            # pyarrow closes (and so publishes) an S3 stream even on error: hence the temporary.
            with dst_fs.open_output_stream(tmp.path) as writer:
                while chunk := reader.read(_COPY_CHUNK):
                    writer.write(chunk)
        dst_fs.move(tmp.path, dst.path)
    except BaseException:
        try:
            if dst_fs.get_file_info(tmp.path).type == pafs.FileType.File:
                dst_fs.delete_file(tmp.path)
        except OSError:
            log.warning("could not remove temporary %s", tmp.uri)
        raise


# --------------------------------------------------------------------------- fingerprints


def fingerprint(loc: Location, full_hash_limit: int = FULL_HASH_LIMIT) -> str:
    """A content fingerprint of a file, for manifests and cache keys.

    It depends on the bytes only, never on where the file is or when it was written, so a copy
    of a dataset from disk to S3 keeps its fingerprints (mtimes and S3 ETags would not: ETags of
    multipart uploads depend on the part size).

    - Up to ``full_hash_limit`` bytes (64 MiB): ``"sha256:<hex>"`` of the whole content.
    - Larger: ``"sha256-sampled:<size>:<hex>"``, the hash of the size and three 1 MiB blocks
      (head, middle, tail). It costs three ranged reads whatever the size, and catches
      truncation, appends and rewrites, but not an edit confined to the unsampled bytes that
      keeps the size; large inputs are not expected to be edited in place.

    Raises:
        FileNotFoundError: There is no such file.
    """
    with open_input(loc) as reader:
        size = reader.size()
        digest = hashlib.sha256()
        if size <= full_hash_limit:
            while chunk := reader.read(_COPY_CHUNK):
                digest.update(chunk)
            return f"sha256:{digest.hexdigest()}"
        digest.update(str(size).encode())
        for offset in (0, (size - _SAMPLE_BLOCK) // 2, size - _SAMPLE_BLOCK):
            digest.update(reader.read_at(_SAMPLE_BLOCK, offset))
        return f"sha256-sampled:{size}:{digest.hexdigest()}"


# --------------------------------------------------------------------------- staged output


def read_manifest(target: Location, manifest_name: str = DEFAULT_MANIFEST) -> dict[str, Any] | None:
    """The manifest of a committed output directory, or ``None`` if it is not (yet) complete."""
    try:
        return json.loads(read_text(target.join(manifest_name)))
    except FileNotFoundError:
        return None


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
            write_bytes_atomic(staged.staging.join("part-0.bin"), data)
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
        files = _all_files(self.staging)
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
        write_text_atomic(self.staging.join(manifest_name), manifest_text)
        target, staging = self.target.path, self.staging.path
        if not os.path.lexists(target):
            os.rename(staging, target)
        elif os.path.isdir(target) and not os.path.islink(target):
            trash = _temp_sibling(self.target, "old").path
            os.rename(target, trash)
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(trash, target)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            raise FileExistsError(f"{target}: exists and is not a directory")
        _fsync_dir(self.target.parent.path)

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
        for rel, _ in _all_files(self.target):
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
