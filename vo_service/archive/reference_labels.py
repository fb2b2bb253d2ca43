"""Reference labels from classical spectroscopy, attached for training.

A reference catalogue (CSV, VOTable or FITS; anything ``astropy.table`` reads)
is joined to the archive's spectra in one of two ways:

* **by key**: a catalogue column holds the archive's ``target_name`` or
  ``obs_id`` (``key="target_name"``, or ``key="target_name=object"`` when the
  catalogue calls it ``object``). Every row is stored under its key, so spectra
  ingested later find their labels too.
* **by position** (``match_radius="1arcsec"``): catalogue RA/Dec (found by UCD,
  by common names, or named with ``radec``) are cross-matched against the
  spectra's ``s_ra``/``s_dec``. Catalogues from other surveys rarely share an
  identifier with the archive, but always a position. Only one-to-one matches
  are kept (see :func:`match_positions`); the set is stored under the matched
  spectra's ``obs_id``, which is how training joins it.

Labels are every numeric column (with ``<label>_err`` or ``e_<label>`` as its
error) unless ``labels`` maps them by name (``teff=TEFF:TEFF_ERR``). The set is
stored in long form, so label models train on whichever labels are present.
Attaching is one transaction: an error stores nothing, the same file with the
same options (the same stored rows) is a no-op, and anything else under an
existing name needs ``replace=True``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import sqlalchemy as sa
from astropy.coordinates import Angle, SkyCoord, search_around_sky
from astropy.table import Table
from sqlalchemy.dialects.postgresql import ARRAY

from schema.tables import reference_label_sets, reference_labels, spectra
from vo_service.archive.store import sha256_of
from vo_service.errors import OperatorError, one_line

KEY_COLUMNS = ("target_name", "obs_id")
RA_NAMES = ("ra", "ra_icrs", "raj2000", "_raj2000", "ra_j2000", "ra2000", "radeg", "ra_deg")
"""Catalogue column names taken for right ascension (any case), in order of preference."""
DEC_NAMES = ("dec", "de", "dec_icrs", "de_icrs", "dej2000", "_dej2000", "decj2000", "dec_j2000",
             "dec2000", "dedeg", "dec_deg")
"""Catalogue column names taken for declination (any case), in order of preference."""
_SEXAGESIMAL = re.compile(r"[:hms\s]")
_SEXAGESIMAL_UNITS = {"h:m:s": u.hourangle, "d:m:s": u.deg}
"""Units of sexagesimal text columns in VOTables (VizieR writes them quoted), unknown to astropy."""
_LABEL_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class LabelTableError(OperatorError):
    """The reference table cannot be used; the message says why."""


@dataclass(frozen=True)
class LabelMapping:
    """One label taken from a named catalogue column, with its error column if any."""

    label: str
    value: str
    error: str | None = None

    @classmethod
    def parse(cls, text: str) -> LabelMapping:
        """``LABEL=COLUMN`` or ``LABEL=COLUMN:ERROR_COLUMN``, as ``--label`` takes it."""
        label, sep, columns = text.partition("=")
        value, _, error = columns.partition(":")
        label = label.strip().lower()
        if not sep or not value.strip() or not _LABEL_NAME.fullmatch(label):
            raise LabelTableError(f"--label {text!r}: expected LABEL=COLUMN or "
                                  "LABEL=COLUMN:ERROR_COLUMN (e.g. teff=TEFF:TEFF_ERR)")
        return cls(label, value.strip(), error.strip() or None)


@dataclass(frozen=True)
class AttachOptions:
    """How a catalogue is joined to the archive and which columns are labels."""

    key: str = "target_name"
    """Archive column the set is keyed by (``target_name`` or ``obs_id``)."""
    key_column: str | None = None
    """Catalogue column holding that key (by key; default: the same name)."""
    match_radius: u.Quantity | None = None
    """Cross-match by position within this angle instead of by key."""
    radec: tuple[str, str] | None = None
    """Catalogue RA and Dec columns (by position; default: found by UCD or name)."""
    labels: tuple[LabelMapping, ...] = ()
    """Labels by name; empty: every numeric column is a label."""

    @classmethod
    def parse(cls, key: str | None = None, match_radius: str | None = None,
              radec: str | None = None, labels: Sequence[str] = ()) -> AttachOptions:
        """The options as the command line spells them (see ``latentvo labels attach -h``)."""
        mappings = tuple(LabelMapping.parse(text) for text in labels)
        seen: set[str] = set()
        for mapping in mappings:
            if mapping.label in seen:
                raise LabelTableError(f"--label maps {mapping.label!r} more than once")
            seen.add(mapping.label)
        columns = None
        if radec is not None:
            parts = [part.strip() for part in radec.split(",")]
            if len(parts) != 2 or not all(parts):
                raise LabelTableError(f"--radec {radec!r}: expected RA_COLUMN,DEC_COLUMN")
            columns = (parts[0], parts[1])
        if match_radius is None:
            if columns is not None:
                raise LabelTableError("--radec needs --match-radius (it names the columns "
                                      "of a cross-match by position)")
            archive_key, _, catalogue_key = (key or "target_name").partition("=")
            archive_key = archive_key.strip()
            if archive_key not in KEY_COLUMNS:
                raise LabelTableError(f"--key must be one of {', '.join(KEY_COLUMNS)} "
                                      f"(or e.g. target_name=object), got {key!r}")
            return cls(key=archive_key, key_column=catalogue_key.strip() or None,
                       labels=mappings)
        if key is not None:
            raise LabelTableError("--key and --match-radius exclude each other: a catalogue "
                                  "is joined either by key or by position")
        try:
            radius = u.Quantity(match_radius)
            radius = radius.to(u.deg)
        except (TypeError, ValueError, u.UnitsError) as exc:
            raise LabelTableError(f"--match-radius {match_radius!r} is not an angle "
                                  "(e.g. 1arcsec, 0.5 arcsec, 2e-4 deg)") from exc
        if not np.isfinite(radius.value) or radius.value <= 0:
            raise LabelTableError(f"--match-radius {match_radius!r} must be a positive angle")
        return cls(key="obs_id", match_radius=radius, radec=columns, labels=mappings)


@dataclass
class AttachResult:
    """What :func:`attach` did: the set, its labels and how the catalogue rows matched.

    Counts are of catalogue rows. By key, a row is matched when a spectrum in the
    archive has its key (unmatched rows are stored too, for spectra to come); by
    position, see :func:`match_positions` (only matched rows are stored).
    """

    name: str
    n_objects: int
    quantities: list[str]
    key_column: str
    matched: int
    ambiguous: int
    unmatched: int
    n_spectra: int
    unchanged: bool = False
    match_radius: u.Quantity | None = None

    def summary(self) -> str:
        """Two lines for the operator: the set, then the match counts."""
        verb = "unchanged" if self.unchanged else "attached"
        if self.match_radius is not None:
            how = f"by position within {self.match_radius.to(u.arcsec):g}"
            unmatched = f"{self.unmatched} unmatched"
        else:
            how = f"by {self.key_column}"
            unmatched = f"{self.unmatched} unmatched (kept for spectra ingested later)"
        return (f"label set {self.name!r} {verb}: {self.n_objects} objects keyed by "
                f"{self.key_column}, labels {', '.join(self.quantities)}\n"
                f"catalogue rows matched {how}: {self.matched} matched, {self.ambiguous} "
                f"ambiguous (not attached), {unmatched}; {self.n_spectra} spectra labelled")


Columns = dict[str, tuple[np.ndarray, np.ndarray | None]]


class Catalogue:
    """A reference catalogue: its columns by name (any case), values with row-numbered errors.

    Rows are numbered from 1 in the order of the file, as the operator sees them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        suffix = path.suffix.lower()
        fmt = {".csv": "ascii.csv", ".txt": "ascii.csv"}.get(suffix)
        try:
            self.table = Table.read(path, format=fmt) if fmt else Table.read(path)
        except Exception as exc:  # noqa: BLE001 - astropy raises many types for bad input
            raise LabelTableError(f"{path}: cannot read as a table ({one_line(exc)})") from exc
        self._by_lower: dict[str, str] = {}
        for name in self.table.colnames:
            self._by_lower.setdefault(name.lower(), name)

    def __len__(self) -> int:
        return len(self.table)

    def find(self, name: str) -> str | None:
        """The column called ``name`` (exactly, else in any case), or None."""
        return name if name in self.table.colnames else self._by_lower.get(name.lower())

    def column(self, name: str, role: str) -> str:
        """The column called ``name``; an error naming ``role`` when there is none."""
        found = self.find(name)
        if found is None:
            shown = ", ".join(self.table.colnames[:20]) + (
                ", ..." if len(self.table.colnames) > 20 else "")
            raise LabelTableError(f"{self.path}: no {role} column {name!r} (columns: {shown})")
        return found

    def ucd_column(self, ucd: str) -> str | None:
        """The one column whose UCD (VOTable ``ucd``, FITS ``TUCDn``) is ``ucd``, if exactly one."""
        hits = []
        for i, name in enumerate(self.table.colnames, start=1):
            column_ucd = self.table[name].meta.get("ucd") or self.table.meta.get(f"TUCD{i}")
            if isinstance(column_ucd, str) and column_ucd.strip().lower() == ucd:
                hits.append(name)
        return hits[0] if len(hits) == 1 else None

    def _cells(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        column = self.table[name]
        missing = np.asarray(np.ma.getmaskarray(column))
        return np.ma.getdata(column), missing

    def numbers(self, name: str) -> np.ndarray:
        """Column ``name`` as floats, NaN where empty; an error naming the first bad row."""
        data, missing = self._cells(name)
        if data.dtype.kind in "fiu":
            values = data.astype(float)
            values[missing] = np.nan
            return values
        values = np.full(len(data), np.nan)
        for row, (cell, empty) in enumerate(zip(data, missing, strict=True), start=1):
            text = cell.decode() if isinstance(cell, bytes) else str(cell)
            if empty or not text.strip():
                continue
            try:
                values[row - 1] = float(text)
            except ValueError:
                raise LabelTableError(f"{self.path}: column {name!r}, row {row}: {text!r} is "
                                      "not numeric") from None
        return values

    def keys(self, name: str) -> list[str]:
        """Column ``name`` as unique non-empty strings; an error naming the row otherwise."""
        data, missing = self._cells(name)
        keys = []
        first_row: dict[str, int] = {}
        for row, (cell, empty) in enumerate(zip(data, missing, strict=True), start=1):
            key = "" if empty else (cell.decode() if isinstance(cell, bytes) else str(cell)).strip()
            if not key:
                raise LabelTableError(f"{self.path}: key column {name!r}, row {row} is empty")
            if key in first_row:
                raise LabelTableError(f"{self.path}: key column {name!r} has duplicates: "
                                      f"{key!r} in rows {first_row[key]} and {row}")
            first_row[key] = row
            keys.append(key)
        return keys

    def angles(self, name: str, hours_if_sexagesimal: bool) -> Angle:
        """Column ``name`` as angles: its unit (degrees if none), or sexagesimal text.

        Sexagesimal right ascension without a unit is read in hours, as catalogues
        write it (``12:30:00.5``, ``12h30m00.5s``).
        """
        data, missing = self._cells(name)
        if missing.any():
            row = int(np.flatnonzero(missing)[0]) + 1
            raise LabelTableError(f"{self.path}: column {name!r}, row {row} has no position")
        column_unit = self.table[name].unit
        if data.dtype.kind in "fiu":
            unit = column_unit or u.deg
            values = data.astype(float)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0]) + 1
                raise LabelTableError(f"{self.path}: column {name!r}, row {row} has no position")
            try:
                return Angle(values, unit=unit)
            except (u.UnitsError, ValueError) as exc:
                raise LabelTableError(f"{self.path}: column {name!r} has unit {unit}, "
                                      "not an angle") from exc
        if column_unit is not None and str(column_unit).strip('"') in _SEXAGESIMAL_UNITS:
            column_unit = _SEXAGESIMAL_UNITS[str(column_unit).strip('"')]
        elif column_unit is not None and not column_unit.is_equivalent(u.deg):
            column_unit = None  # a unit astropy does not know: the text decides
        degrees = np.empty(len(data))
        for row, cell in enumerate(data, start=1):
            text = (cell.decode() if isinstance(cell, bytes) else str(cell)).strip()
            unit = column_unit or (u.hourangle if hours_if_sexagesimal
                                   and _SEXAGESIMAL.search(text) else u.deg)
            try:
                degrees[row - 1] = Angle(text, unit=unit).deg
            except (u.UnitsError, ValueError):
                raise LabelTableError(f"{self.path}: column {name!r}, row {row}: {text!r} is "
                                      "not an angle") from None
        return Angle(degrees, unit=u.deg)

    def positions(self, ra_name: str, dec_name: str) -> SkyCoord:
        """ICRS positions of the rows from the RA and Dec columns."""
        ra = self.angles(ra_name, hours_if_sexagesimal=True)
        dec = self.angles(dec_name, hours_if_sexagesimal=False)
        bad = np.flatnonzero(np.abs(dec.deg) > 90)
        if len(bad):
            raise LabelTableError(f"{self.path}: column {dec_name!r}, row {bad[0] + 1}: "
                                  f"declination {dec.deg[bad[0]]:g} deg is outside +-90")
        return SkyCoord(ra=ra, dec=dec, frame="icrs")

    def radec_columns(self, explicit: tuple[str, str] | None) -> tuple[str, str]:
        """The RA and Dec columns: named, else by UCD, else by a common name."""
        if explicit is not None:
            return (self.column(explicit[0], "RA (--radec)"),
                    self.column(explicit[1], "Dec (--radec)"))
        found = []
        for axis, names in (("ra", RA_NAMES), ("dec", DEC_NAMES)):
            column = (self.ucd_column(f"pos.eq.{axis};meta.main")
                      or self.ucd_column(f"pos.eq.{axis}")
                      or next((c for c in map(self.find, names) if c is not None), None))
            if column is None:
                raise LabelTableError(
                    f"{self.path}: no {axis.upper()} column found (no UCD pos.eq.{axis}, none "
                    f"of the names {', '.join(names)}); name them with --radec RA_COL,DEC_COL")
            found.append(column)
        return found[0], found[1]


def read_labels(catalogue: Catalogue, mappings: Sequence[LabelMapping],
                exclude: set[str]) -> Columns:
    """Per label, (values, errors) aligned with the catalogue rows.

    With ``mappings``, exactly those columns; without, every column not in
    ``exclude`` (key or position columns), named in lower case, with
    ``<label>_err`` or ``e_<label>`` as its error.
    """
    path = catalogue.path
    quantities: Columns = {}
    if mappings:
        for mapping in mappings:
            value = catalogue.column(mapping.value, f"label ({mapping.label})")
            error = (catalogue.column(mapping.error, f"error ({mapping.label})")
                     if mapping.error else None)
            quantities[mapping.label] = (catalogue.numbers(value),
                                         catalogue.numbers(error) if error else None)
        return quantities
    names = {n.lower(): n for n in catalogue.table.colnames if n not in exclude}
    error_of = {}
    for lower, name in names.items():
        for base in ([lower[:-4]] if lower.endswith("_err") else []) + \
                    ([lower[2:]] if lower.startswith("e_") else []):
            error_of[base] = name
    for lower, name in names.items():
        if name in error_of.values():
            continue
        try:
            values = catalogue.numbers(name)
        except LabelTableError as exc:
            raise LabelTableError(f"{exc} (name the label columns with --label)") from None
        quantities[lower] = (values,
                             catalogue.numbers(error_of[lower]) if lower in error_of else None)
    if not quantities:
        raise LabelTableError(f"{path}: no numeric label columns besides "
                              f"{', '.join(sorted(exclude))}")
    return quantities


@dataclass
class PositionMatch:
    """Outcome of :func:`match_positions`, per catalogue row."""

    target: np.ndarray  # index into the targets of the matched row; -1 if none
    ambiguous: np.ndarray  # bool
    unmatched: np.ndarray  # bool


def match_positions(catalogue: SkyCoord, archive: SkyCoord, target_of: np.ndarray,
                    radius: u.Quantity) -> PositionMatch:
    """One-to-one matches between catalogue rows and archive targets within ``radius``.

    A row's candidates are the targets (``target_of`` gives each archive position's
    target: spectra of one star share one) with a position within ``radius`` of it.
    A row is *matched* when it has exactly one candidate and is that target's only
    candidate row; *ambiguous* when it has several candidates or shares its one
    target with another row (blends, duplicated catalogue entries): neither pairing
    can be trusted, so nothing is attached for it; *unmatched* without candidates.
    """
    n_rows = len(catalogue)
    n_targets = int(target_of.max()) + 1 if len(target_of) else 0
    rows, spectra_index, _, _ = search_around_sky(catalogue, archive, radius)
    pairs = np.unique(np.stack([rows, target_of[spectra_index]], axis=1), axis=0) \
        if len(rows) else np.zeros((0, 2), dtype=int)
    targets_per_row = np.bincount(pairs[:, 0], minlength=n_rows)
    rows_per_target = np.bincount(pairs[:, 1], minlength=n_targets)
    target = np.full(n_rows, -1)
    single = pairs[targets_per_row[pairs[:, 0]] == 1]
    target[single[:, 0]] = single[:, 1]
    matched = (target >= 0) & (rows_per_target[np.maximum(target, 0)] == 1)
    target[~matched] = -1
    return PositionMatch(target, (targets_per_row > 0) & ~matched, targets_per_row == 0)


@dataclass
class _Keyed:
    """Catalogue rows under the keys they are stored by, and the match counts."""

    row_of_key: dict[str, int]
    spectra_of_key: dict[str, int]
    matched: int
    ambiguous: int
    unmatched: int


def _match_keys(conn: sa.Connection, path: Path, column: str, keys: list[str],
                archive_key: str) -> _Keyed:
    """Every row under its key; matched: a spectrum in the archive has that key."""
    archive_column = spectra.c[archive_key]
    spectra_of_key: dict[str, int] = {key: n for key, n in conn.execute(
        sa.select(archive_column, sa.func.count())
        .where(archive_column == sa.any_(sa.literal(keys, ARRAY(sa.Text))))
        .group_by(archive_column))}
    if not spectra_of_key:
        raise LabelTableError(f"{path}: none of the {len(keys)} keys in column {column!r} is "
                              f"the {archive_key} of a spectrum in the archive (ingest the "
                              "spectra first, or check --key)")
    matched = sum(1 for k in keys if k in spectra_of_key)
    return _Keyed({k: i for i, k in enumerate(keys)}, spectra_of_key, matched, 0,
                  len(keys) - matched)


def _match_sky(conn: sa.Connection, path: Path, positions: SkyCoord,
               radius: u.Quantity) -> _Keyed:
    """Matched rows under the obs_id of every spectrum of their target."""
    rows = conn.execute(sa.select(spectra.c.obs_id, spectra.c.target_name, spectra.c.s_ra,
                                  spectra.c.s_dec).order_by(spectra.c.spectrum_id)).all()
    if not rows:
        raise LabelTableError("the archive has no spectra to match positions against "
                              "(ingest the spectra first)")
    _, target_of = np.unique([r.target_name or r.obs_id for r in rows], return_inverse=True)
    archive = SkyCoord(ra=[r.s_ra for r in rows] * u.deg, dec=[r.s_dec for r in rows] * u.deg,
                       frame="icrs")
    found = match_positions(positions, archive, target_of, radius)
    matched_rows = np.flatnonzero(found.target >= 0)
    if not len(matched_rows):
        raise LabelTableError(
            f"{path}: no catalogue row matches an archive target one-to-one within "
            f"{radius.to(u.arcsec):g} ({int(found.ambiguous.sum())} ambiguous, "
            f"{int(found.unmatched.sum())} unmatched)")
    row_of_target = {int(found.target[i]): int(i) for i in matched_rows}
    row_of_key = {rows[s].obs_id: row_of_target[int(t)] for s, t in enumerate(target_of)
                  if int(t) in row_of_target}
    return _Keyed(row_of_key, dict.fromkeys(row_of_key, 1), len(matched_rows),
                  int(found.ambiguous.sum()), int(found.unmatched.sum()))


def _label_rows(name: str, keyed: _Keyed, quantities: Columns) -> set[tuple]:
    rows = set()
    for quantity, (values, errors) in quantities.items():
        for key, i in keyed.row_of_key.items():
            if np.isfinite(values[i]):
                err = None if errors is None or not np.isfinite(errors[i]) else float(errors[i])
                rows.add((name, key, quantity, float(values[i]), err))
    return rows


def attach(engine: sa.Engine, path: Path, name: str, key: str | None = None,
           replace: bool = False, *, match_radius: str | None = None, radec: str | None = None,
           labels: Sequence[str] = ()) -> AttachResult:
    """Store the reference catalogue at ``path`` as the label set ``name``.

    Parameters
    ----------
    engine
        Owner-role engine of the archive.
    path
        Reference catalogue (see the module notes).
    name
        Name of the set, as label-model training asks for it.
    key
        By key: the archive key (``target_name`` or ``obs_id``, the default
        ``target_name``), optionally ``=COLUMN`` naming the catalogue column holding it.
    replace
        Swap an existing set of this name whose stored rows would change (other
        file, options or matches); without it that is an error, so a typo cannot
        silently discard a set.
    match_radius
        By position instead: the largest separation (an astropy angle, ``1arcsec``).
    radec
        ``RA_COLUMN,DEC_COLUMN`` of the catalogue positions (by position).
    labels
        ``LABEL=COLUMN[:ERROR_COLUMN]`` mappings; none: every numeric column.

    Raises
    ------
    LabelTableError
        The file, an option, a column or a row is unusable, nothing matches, or the
        name is taken by a different set; nothing is stored then.
    """
    options = AttachOptions.parse(key, match_radius, radec, labels)
    path = Path(path)
    if not path.is_file():
        raise LabelTableError(f"{path}: no such file")
    sha = sha256_of(path)
    catalogue = Catalogue(path)
    if len(catalogue) == 0:
        raise LabelTableError(f"{path}: the catalogue has no rows")
    if options.match_radius is None:
        key_name = catalogue.column(options.key_column or options.key, "key")
        keys = catalogue.keys(key_name)
        used = {key_name}
    else:
        ra_name, dec_name = catalogue.radec_columns(options.radec)
        positions = catalogue.positions(ra_name, dec_name)
        used = {ra_name, dec_name}
    quantities = read_labels(catalogue, options.labels, used)
    with engine.begin() as conn:
        keyed = (_match_keys(conn, path, key_name, keys, options.key)
                 if options.match_radius is None else
                 _match_sky(conn, path, positions, options.match_radius))
        rows = _label_rows(name, keyed, quantities)
        if not rows:
            raise LabelTableError(f"{path}: the matched rows have no label values "
                                  f"({', '.join(sorted(quantities))} are all empty)")
        stored_keys = {row[1] for row in rows}
        result = AttachResult(
            name, len(stored_keys), sorted(quantities), options.key, keyed.matched,
            keyed.ambiguous, keyed.unmatched,
            sum(keyed.spectra_of_key.get(k, 0) for k in stored_keys),
            match_radius=options.match_radius)
        existing = conn.execute(sa.select(reference_label_sets).where(
            reference_label_sets.c.name == name)).mappings().first()
        if existing is not None:
            if (existing["source_sha256"] == sha and existing["key_column"] == options.key
                    and _stored_rows(conn, name) == rows):
                result.unchanged = True
                return result
            if not replace:
                raise LabelTableError(
                    f"a reference-label set named {name!r} exists from a different file or "
                    f"options ({existing['source_path']}); use --replace to swap it")
            conn.execute(reference_label_sets.delete().where(reference_label_sets.c.name == name))
        conn.execute(reference_label_sets.insert().values(
            name=name, source_path=str(path.resolve()), source_sha256=sha,
            key_column=options.key, n_rows=len(stored_keys)))
        conn.execute(reference_labels.insert(), [
            {"label_set": s, "key": k, "quantity": q, "value": v, "error": e}
            for s, k, q, v, e in sorted(rows, key=lambda r: r[1:3])])
    return result


def _stored_rows(conn: sa.Connection, name: str) -> set[tuple]:
    return {tuple(row) for row in conn.execute(sa.select(
        reference_labels.c.label_set, reference_labels.c.key, reference_labels.c.quantity,
        reference_labels.c.value, reference_labels.c.error).where(
            reference_labels.c.label_set == name))}
