"""The error of a bad report input (file, keys, shapes, labels)."""
from __future__ import annotations

from ..errors import InvalidInputError


class ReportInputError(InvalidInputError):
    """A user mistake in the report's inputs; the message is one line naming the problem.

    The command line prints it and exits with status 2.
    """


def missing_dependency(package: str, needed_by: str, extra: str = "report") -> ReportInputError:
    """The one-line error for an optional dependency that is not installed, naming the extra that brings it."""
    return ReportInputError(f"{needed_by} needs {package}: pip install 'relusv[{extra}]'")
