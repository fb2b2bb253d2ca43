"""The one error type of the ML jobs that an operator can cause.

:class:`MLError` is an :class:`~vo_service.errors.OperatorError`: the ``latentvo``
command line prints its message as a single line with exit status 1; anything
else is a bug.
"""

from __future__ import annotations

from vo_service.errors import OperatorError


class MLError(OperatorError):
    """An operator-facing failure of an ML job (bad input, missing artifact, ...)."""
