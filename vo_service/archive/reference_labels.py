"""Reference labels from classical spectroscopy, attached for training.

A reference table (CSV, VOTable or FITS; anything ``astropy.table`` reads)
has a key column (``target_name`` or ``obs_id``) and numeric label columns;
a column ``<label>_err`` (or ``e_<label>``) gives that label's error. It is
stored as a named set in long form, so label models can train on any labels
present. Attaching the same file again is a no-op; a changed file under the
same name needs ``replace=True`` and swaps the set in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from astropy.table import Table

from schema.tables import reference_label_sets, reference_labels
from vo_service.archive.store import sha256_of
from vo_service.errors import OperatorError

KEY_COLUMNS = ("target_name", "obs_id")


class LabelTableError(OperatorError):
    """The reference table cannot be used; the message says why."""


@dataclass
class AttachResult:
    """What :func:`attach` did: the set's name, size and quantities."""

    name: str
    n_objects: int
    quantities: list[str]
    unchanged: bool = False


Columns = dict[str, tuple[np.ndarray, np.ndarray | None]]


def read_label_table(path: Path, key: str) -> tuple[list[str], Columns]:
    """Keys and, per quantity, (values, errors) from a reference table."""
    if key not in KEY_COLUMNS:
        raise LabelTableError(f"key must be one of {', '.join(KEY_COLUMNS)}, got {key!r}")
    fmt = "ascii.csv" if path.suffix.lower() in (".csv", ".txt") else None
    try:
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for bad input
        raise LabelTableError(f"{path}: cannot read as a table ({exc})") from exc
    names = {n.lower(): n for n in table.colnames}
    if key not in names:
        raise LabelTableError(
            f"{path}: no key column {key!r} (columns: {', '.join(table.colnames)})")
    keys = [str(k).strip() for k in table[names[key]]]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise LabelTableError(f"{path}: key column {key!r} has duplicates, e.g. {dup}")
    error_cols = {}
    for lower, name in names.items():
        for base in ([lower[:-4]] if lower.endswith("_err") else []) + \
                    ([lower[2:]] if lower.startswith("e_") else []):
            error_cols[base] = name
    quantities = {}
    for lower, name in names.items():
        if lower == key or name in error_cols.values():
            continue
        column = table[name]
        if column.dtype.kind not in "fiu":
            raise LabelTableError(f"{path}: column {name!r} is not numeric")
        values: np.ndarray = np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)
        errors: np.ndarray | None = None
        if lower in error_cols:
            errors = np.ma.filled(np.ma.asarray(table[error_cols[lower]], dtype=float), np.nan)
        quantities[lower] = (values, errors)
    if not quantities:
        raise LabelTableError(f"{path}: no numeric label columns besides {key!r}")
    return keys, quantities


def attach(engine: sa.Engine, path: Path, name: str, key: str = "target_name",
           replace: bool = False) -> AttachResult:
    """Store the reference table at ``path`` as the label set ``name``.

    Parameters
    ----------
    engine
        Owner-role engine of the archive.
    path
        Reference table (see the module notes for its columns).
    name
        Name of the set, as label-model training asks for it.
    key
        Column that matches rows to spectra: ``target_name`` or ``obs_id``.
    replace
        Swap an existing set of this name that came from a different file; without
        it that is an error, so a typo cannot silently discard a set.

    Raises
    ------
    LabelTableError
        The file is missing or unusable, or the name is taken by another file.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelTableError(f"{path}: no such file")
    sha = sha256_of(path)
    keys, quantities = read_label_table(path, key)
    with engine.begin() as conn:
        existing = conn.execute(sa.select(reference_label_sets).where(
            reference_label_sets.c.name == name)).mappings().first()
        if existing is not None:
            if existing["source_sha256"] == sha:
                return AttachResult(name, existing["n_rows"], sorted(quantities), unchanged=True)
            if not replace:
                raise LabelTableError(
                    f"a reference-label set named {name!r} exists from a different file "
                    f"({existing['source_path']}); use --replace to swap it")
            conn.execute(reference_label_sets.delete().where(reference_label_sets.c.name == name))
        conn.execute(reference_label_sets.insert().values(
            name=name, source_path=str(path.resolve()), source_sha256=sha, key_column=key,
            n_rows=len(keys)))
        rows = []
        for quantity, (values, errors) in quantities.items():
            for i, k in enumerate(keys):
                if np.isfinite(values[i]):
                    err = None if errors is None or not np.isfinite(errors[i]) else float(errors[i])
                    rows.append({"label_set": name, "key": k, "quantity": quantity,
                                 "value": float(values[i]), "error": err})
        if rows:
            conn.execute(reference_labels.insert(), rows)
    return AttachResult(name, len(keys), sorted(quantities))
