"""Run a command against a separate PostgreSQL server reached through LATENTVO_DATABASE_URL.

CI uses this to prove the external-database path: the server is set up the
way a database administrator would (a non-superuser owner with a password,
the pgvector extension and the read-only role created by the administrator),
and latentvo only gets a URL. The server comes from the same PostgreSQL
binaries as the embedded one, because Debian's PostgreSQL has no pgvector.

Usage: python tests/external_database.py -- COMMAND...
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vo_service.db.embedded import EmbeddedPostgres  # noqa: E402

OWNER, PASSWORD, DBNAME, READER = "archive_owner", "s3cret-owner", "archive", "latentvo_reader"


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1:] if "--" in argv else argv
    with tempfile.TemporaryDirectory(prefix="latentvo-extdb-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata")
        status = server.start()
        try:
            admin = sa.create_engine(server.superuser_url(status.port),
                                     isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{PASSWORD}'"))
                conn.execute(sa.text(f"CREATE ROLE {READER} NOLOGIN"))
                conn.execute(sa.text(f"GRANT {READER} TO {OWNER}"))
                conn.execute(sa.text(f"CREATE DATABASE {DBNAME} OWNER {OWNER}"))
            admin.dispose()
            admin = sa.create_engine(server.superuser_url(status.port, DBNAME),
                                     isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text("CREATE EXTENSION vector"))
            admin.dispose()
            env = dict(os.environ)
            env["LATENTVO_DATABASE_URL"] = (
                f"postgresql://{OWNER}:{PASSWORD}@127.0.0.1:{status.port}/{DBNAME}")
            return subprocess.call(command, env=env)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
