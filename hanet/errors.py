"""The base of every error a user can cause and fix: a bad config, file, location, dataset or
checkpoint. Each is reported by the pipelines as one ``error: ...`` line naming what is wrong
(:func:`hanet.cli.run`); anything else is a bug and keeps its traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake in what the user gave; the message names the file, key or URI and the problem."""
