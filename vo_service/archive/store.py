"""Content-addressed store of the original spectrum files.

A file is stored once under its SHA-256 (``ab/cd/<sha256>``), so re-ingesting
it, or a copy of it under another name, stores nothing new, and a crash
between storing and committing leaves at most an orphan that the next run
reuses. SSA and DataLink serve files from here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB pieces: its key in the store."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileStore:
    """The store under ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        """Where the file of this checksum lies (whether or not it is stored)."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, source: Path, sha256: str) -> Path:
        """Copy ``source`` into the store (atomically) unless it is already there."""
        target = self.path_for(sha256)
        if target.exists() and target.stat().st_size == source.stat().st_size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return target

    def open(self, sha256: str) -> BinaryIO:
        """The stored file of this checksum, opened for binary reading."""
        return open(self.path_for(sha256), "rb")
