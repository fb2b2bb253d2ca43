"""Naming this process's database sessions, and ending those a dead process left behind.

Every connection latentvo opens carries ``application_name =
latentvo/<host>/<pid>`` (``.../job/<id>`` while an async job's query runs), so
an operator sees in ``pg_stat_activity`` whose query a backend runs. When a
web server is killed (``kill -9``, a crash), PostgreSQL does not notice until
it next writes to the socket: a long query keeps its backend busy, out of
reach of ABORT and DELETE. A server starting on the same host therefore ends
the backends whose process is gone (:func:`terminate_orphaned_backends`)
before it queues their jobs again.

Each role ends only its own sessions (PostgreSQL lets a role signal backends of
roles it has the privileges of), so neither the owner nor the reader needs
``pg_signal_backend``.
"""

from __future__ import annotations

import logging
import os
import socket

import psutil
import sqlalchemy as sa

PREFIX = "latentvo"
HOST_CHARS = 24  # application_name holds 63 bytes: prefix, host, pid and a job id fit

log = logging.getLogger("latentvo.db")


def _host() -> str:
    return socket.gethostname()[:HOST_CHARS]


def application_name(job_id: str | None = None) -> str:
    """The ``application_name`` of this process's sessions (of ``job_id``'s query)."""
    name = f"{PREFIX}/{_host()}/{os.getpid()}"
    return f"{name}/job/{job_id}" if job_id else name


def _owner_pid(name: str) -> int | None:
    """The pid in a name of :func:`application_name` given on this host, else None."""
    parts = name.split("/")
    if len(parts) < 3 or parts[0] != PREFIX or parts[1] != _host() or not parts[2].isdigit():
        return None
    return int(parts[2])


def terminate_orphaned_backends(engines: list[sa.Engine]) -> int:
    """End the sessions of dead latentvo processes of this host; return how many.

    Parameters
    ----------
    engines
        One engine per role whose sessions may be orphaned (the owner and the reader);
        each ends the sessions that logged in as its current role (a reader engine that
        switches with SET ROLE finds none: its sessions are the owner's, ended by the
        owner engine).
    """
    ended = 0
    for engine in engines:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT pid, application_name FROM pg_stat_activity "
                "WHERE usename = current_user AND pid <> pg_backend_pid() "
                "AND application_name LIKE :prefix"), {"prefix": f"{PREFIX}/{_host()}/%"}).all()
            for backend, name in rows:
                pid = _owner_pid(name)
                if pid is None or pid == os.getpid() or psutil.pid_exists(pid):
                    continue
                if conn.scalar(sa.select(sa.func.pg_terminate_backend(backend, 5000))):
                    log.warning("ended database session %s (%s): its process is gone",
                                backend, name)
                    ended += 1
            conn.commit()
    return ended
