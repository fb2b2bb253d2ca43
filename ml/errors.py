"""The one error type of the ML jobs that an operator can cause.

The ``latentvo`` command line catches :class:`MLError` and prints its message as a
single line with a non-zero exit status; anything else is a bug.
"""

from __future__ import annotations


class MLError(RuntimeError):
    """An operator-facing failure of an ML job (bad input, missing artifact, ...)."""
