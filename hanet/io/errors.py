"""Storage failures as the user's errors: what the object store said, in words, naming the URI
and the endpoint, never a credential.

pyarrow reports every S3 failure as a bare ``OSError`` whose text embeds the AWS SDK's error
code (``AWS Error ACCESS_DENIED during HeadObject operation ...``, ``NETWORK_CONNECTION``,
``NO_SUCH_BUCKET``). :func:`translate` maps those codes to the classes below; anything it does
not recognise stays the original error (a bug or a local problem keeps its traceback).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import pyarrow.fs as pafs

from hanet.errors import UserError
from hanet.io.location import Location

__all__ = [
    "AccessDenied",
    "EndpointUnreachable",
    "NoSuchBucket",
    "StorageError",
    "endpoint_of",
    "no_such_bucket",
    "not_found",
    "translate",
    "translated",
    "translating",
]


class StorageError(UserError, OSError):
    """The object store refused a request or could not be reached; names the URI and endpoint.

    Attributes:
        transient: Whether the same request may succeed later (the endpoint was unreachable,
            busy or failing), so that retrying is worth it.
    """

    transient = False


class AccessDenied(StorageError):
    """The credentials were rejected, or they do not allow the request."""


class NoSuchBucket(StorageError, FileNotFoundError):
    """The bucket does not exist (a ``FileNotFoundError``, so "not there" code keeps working)."""


class EndpointUnreachable(StorageError):
    """No answer from the endpoint, or only server errors and throttling: worth retrying."""

    transient = True


_CODE = re.compile(r"AWS Error (\w+)")
_DENIED = {
    "ACCESS_DENIED",
    "SIGNATURE_DOES_NOT_MATCH",
    "INVALID_ACCESS_KEY_ID",
    "INVALID_CLIENT_TOKEN_ID",
    "UNRECOGNIZED_CLIENT",
    "EXPIRED_TOKEN",
    "MISSING_AUTHENTICATION_TOKEN",
    "INVALID_SIGNATURE",
}
_UNAVAILABLE = {
    "NETWORK_CONNECTION",
    "REQUEST_TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
    "INTERNAL_FAILURE",
    "REQUEST_TIME_TOO_SKEWED",
}
# curl's own words when no HTTP answer came at all, and the server errors and throttling the
# SDK reports as UNKNOWN with their status (a server that is starting up answers 500 or 503).
_NO_ANSWER = re.compile(
    r"curlCode: (6|7|28|52|55|56)\b|Could(n't| not) (connect|resolve)|Connection refused|"
    r"timed out|Empty reply|HTTP status (5\d\d|429)\b",
    re.IGNORECASE,
)


def endpoint_of(location: Location) -> str:
    """The endpoint a location is reached through, as a user would write it."""
    if location.endpoint_override:
        return f"{location.endpoint_scheme}://{location.endpoint_override}"
    return f"AWS S3 ({location.region or 'default region'})"


def translate(err: BaseException, location: Location) -> BaseException:
    """The :class:`StorageError` for an S3 failure of ``location``, or ``err`` itself when it is
    not one this module recognises (or already translated)."""
    if isinstance(err, StorageError) or not isinstance(err, OSError):
        return err
    if location.scheme != "s3":
        return err
    text = str(err)
    found = _CODE.search(text)
    code = found.group(1) if found else ""
    endpoint = endpoint_of(location)
    if code in _DENIED:
        return AccessDenied(
            f"{location.uri}: access denied by {endpoint} ({code}): check the "
            "credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or the "
            "profile or role) and that they may use this bucket"
        )
    if code == "NO_SUCH_BUCKET":
        return no_such_bucket(location)
    if code in _UNAVAILABLE or _NO_ANSWER.search(text):
        status = re.search(r"HTTP status (\d{3})", text)
        if status and status.group(1) != "000":
            reason = f"HTTP {status.group(1)}"
        elif code in _UNAVAILABLE and code != "NETWORK_CONNECTION":
            reason = code
        else:
            reason = "no connection"
        return EndpointUnreachable(
            f"{location.uri}: cannot reach the S3 endpoint {endpoint} ({reason}); check "
            "AWS_ENDPOINT_URL / the network, and run again once it answers"
        )
    return err


def no_such_bucket(location: Location) -> NoSuchBucket:
    """The error for a location whose bucket does not exist."""
    return NoSuchBucket(
        f"{location.uri}: no such bucket {location.bucket!r} at {endpoint_of(location)}"
    )


@contextmanager
def translated(location: Location) -> Iterator[None]:
    """Raise S3 failures inside the block as :class:`StorageError` (see :func:`translate`)."""
    try:
        yield
    except OSError as err:
        new = translate(err, location)
        if new is err:
            raise
        raise new from err


_F = TypeVar("_F", bound=Callable[..., Any])


def translating(function: _F) -> _F:
    """Decorator: S3 failures of ``function(location, ...)`` raised as StorageError naming
    ``location``."""

    @functools.wraps(function)
    def wrapper(location: Location, *args: Any, **kwargs: Any) -> Any:
        with translated(location):
            return function(location, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def not_found(location: Location, message: str) -> FileNotFoundError:
    """``message`` as a FileNotFoundError, or :class:`NoSuchBucket` when that is why (S3
    answers both the same way)."""
    if location.scheme == "s3" and not location.is_root:
        bucket = replace(location, path=location.bucket)
        if bucket.filesystem().get_file_info(bucket.path).type == pafs.FileType.NotFound:
            return no_such_bucket(location)
    return FileNotFoundError(message)
