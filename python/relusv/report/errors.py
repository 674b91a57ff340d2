"""The error of a bad report input (file, keys, shapes, labels)."""
from __future__ import annotations


class ReportInputError(ValueError):
    """A user mistake in the report's inputs; the message is one line naming the problem.

    The command line prints it and exits with status 2.
    """
