"""The one base class of the errors an archive operator can cause.

An operator mistake (a malformed ``latentvo.toml``, an unreachable database, a
missing input file, an unknown model id, a declaration that names a reserved
schema) is not a bug: the operator needs one sentence saying what to fix, not
a traceback. Every such error type of the platform, the ML jobs and the
command line subclasses :class:`OperatorError`, and :func:`vo_service.cli.main`
is the single place that turns one into ``error: <message>`` on stderr and exit
status 1. Anything that is not an :class:`OperatorError` is a bug and keeps its
traceback.

Errors that libraries raise for what are really operator mistakes
(``tomllib.TOMLDecodeError``, SQLAlchemy's ``OperationalError`` for a database
that does not answer, ``FileNotFoundError`` for a named input file) are
translated into a subclass where latentvo calls the library
(:mod:`vo_service.config`, :mod:`vo_service.db.database`, ...), not caught ad hoc
by the command line.

Errors a *user* of the web service causes are a different kind:
:class:`vo_service.dali.DALIError` becomes a protocol error document.
"""

from __future__ import annotations


class OperatorError(Exception):
    """An operator mistake; the message says what to fix.

    The message should be one sentence on one line; :func:`one_line` makes it so
    for messages that carry text from elsewhere (a server's reply, a file name).
    """


def one_line(message: object) -> str:
    """The text of ``message`` on one line: its lines joined, blank ones dropped.

    Parameters
    ----------
    message
        An exception or any object whose ``str`` is the text.

    Returns
    -------
    str
        The stripped non-blank lines of the text, joined by single spaces.
    """
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())
