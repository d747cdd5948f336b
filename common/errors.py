"""The one error a user's input can cause: bad flags, a bad env id, an unusable checkpoint."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit status 2."""


class RunFailure(Exception):
    """A part of the run stopped answering (not the user's input): one line on stderr, exit status 1,
    after the owner has stopped every child and written the final checkpoint."""
