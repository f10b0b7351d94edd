"""hanet.io.retry: work is run again while the object store does not answer, and only then."""

from __future__ import annotations

import pytest

from hanet.io.errors import AccessDenied, EndpointUnreachable
from hanet.io.location import parse_location
from hanet.io.retry import retry_unreachable

STORE = parse_location("s3://bucket/out", endpoint_url="http://127.0.0.1:9", env={})
# pyarrow's words for a refused connection (see tests/test_io_errors.py).
DOWN = (
    "When reading information for key 'a' in bucket 'bucket': AWS Error NETWORK_CONNECTION "
    "during HeadObject operation: curlCode: 7, Could not connect to server"
)


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then returns the number of calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


def test_an_outage_shorter_than_the_pauses_costs_only_retries() -> None:
    seen: list[tuple[type, float]] = []
    work = Flaky(2, OSError(DOWN))
    result = retry_unreachable(
        work, STORE, (0.0, 0.01, 0.02), lambda e, d: seen.append((type(e), d))
    )
    assert result == 3 and seen == [(EndpointUnreachable, 0.0), (EndpointUnreachable, 0.01)]


def test_an_outage_longer_than_the_pauses_is_one_clear_error() -> None:
    work = Flaky(10, OSError(DOWN))
    with pytest.raises(EndpointUnreachable) as err:
        retry_unreachable(work, STORE, (0.0, 0.0))
    assert work.calls == 3 and "cannot reach the S3 endpoint http://127.0.0.1:9" in str(err.value)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bad object"),
        OSError("AWS Error ACCESS_DENIED during GetObject operation"),
        AccessDenied("s3://bucket/out: access denied"),
    ],
)
def test_other_failures_are_not_retried(error: Exception) -> None:
    work = Flaky(1, error)
    with pytest.raises((ValueError, AccessDenied)):
        retry_unreachable(work, STORE, (0.0, 0.0))
    assert work.calls == 1
