"""``labels attach`` against a really ingested archive: every format, join and error.

The archive is a small synthetic one (some stars observed several times), ingested
once for the module; every test starts without label sets. Catalogues are built
from the spectra's own positions and names, so matches are known by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from ml.archive_reader import labelled_spectra
from ml.synth import write_archive
from tests.conftest import run_cli
from vo_service.archive.ingest import Ingester, expand_paths
from vo_service.archive.reference_labels import LabelTableError, attach, match_positions


@dataclass
class Star:
    """One archive target: its name, position and the obs_id of each of its spectra."""

    name: str
    position: SkyCoord
    obs_ids: list[str]

    def offset(self, arcsec: float, angle_deg: float = 30.0) -> SkyCoord:
        return self.position.directional_offset_by(angle_deg * u.deg, arcsec * u.arcsec)


@pytest.fixture(scope="module")
def synthetic(database, settings, tmp_path_factory):
    """A 30-spectrum synthetic archive, written and ingested into an empty database."""
    with database.engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE latentvo.spectra, latentvo.models, latentvo.latent, latentvo.labels, "
            "latentvo_ops.ingest_files, latentvo_ops.reference_label_sets, "
            "latentvo_ops.reference_labels CASCADE"))
    out = tmp_path_factory.mktemp("label-archive")
    write_archive(out, n=30, seed=8, progress=False, workers=1, n_pixels=600)
    report = Ingester(database.engine, settings, workers=1).run(expand_paths([str(out)]))
    assert report.ingested == 30
    return out


@pytest.fixture(scope="module")
def stars(database, synthetic) -> list[Star]:
    """The archive's targets as ingest stored them, the most observed first."""
    by_name: dict[str, Star] = {}
    with database.engine.connect() as conn:
        for obs_id, name, ra, dec in conn.execute(sa.text(
                "SELECT obs_id, target_name, s_ra, s_dec FROM latentvo.spectra "
                "ORDER BY spectrum_id")):
            star = by_name.setdefault(name, Star(name, SkyCoord(ra * u.deg, dec * u.deg), []))
            star.obs_ids.append(obs_id)
    result = sorted(by_name.values(), key=lambda s: (-len(s.obs_ids), s.name))
    assert len(result[0].obs_ids) > 1, "the first star is observed several times"
    return result


@pytest.fixture
def archive(database, stars):
    """The ingested archive without any reference-label set."""
    with database.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM latentvo_ops.reference_label_sets"))
    return database


def stored(database, name=None):
    query = ("SELECT label_set, key, quantity, value, error FROM latentvo_ops.reference_labels "
             + ("WHERE label_set = :n " if name else "") + "ORDER BY label_set, key, quantity")
    with database.engine.connect() as conn:
        return conn.execute(sa.text(query), {"n": name}).all()


def key_column(database, name):
    with database.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT key_column FROM latentvo_ops.reference_label_sets "
                                   "WHERE name = :n"), {"n": name})


def write(table: Table, path):
    fmt = {".csv": "ascii.csv", ".xml": "votable", ".fits": "fits"}[path.suffix]
    table.write(path, format=fmt, overwrite=True)
    return path


def key_table(stars, key="target_name"):
    """Four archive stars (one without Teff) and one name the archive does not have."""
    names = [s.name for s in stars[:4]] + ["NOT-IN-ARCHIVE"]
    return Table({key: names, "teff": [5000.0, 6000.0, np.nan, 4500.0, 5500.0],
                  "teff_err": [50.0, 60.0, 70.0, 45.0, 55.0],
                  "logg": [4.4, 2.5, 4.0, 4.6, 3.0], "e_logg": [0.1, 0.2, 0.1, 0.1, 0.1],
                  "mh": [0.0, -1.0, 0.2, 0.1, -0.3]})


# -- by key ---------------------------------------------------------------------------


def test_the_synthetic_archives_own_reference_labels(archive, stars, synthetic):
    """The README's workflow: the table ``latentvo synth`` writes attaches as it is."""
    result = attach(archive.engine, synthetic / "reference_labels.csv", "synthetic")
    assert result.quantities == ["alpha_m", "logg", "mh", "teff"]
    assert result.matched > 0 and (result.ambiguous, result.unmatched) == (0, 0)
    with archive.engine.connect() as conn:
        joined = labelled_spectra(conn, "synthetic")
    assert len(joined.spectra) == result.n_spectra
    assert np.isfinite(joined.labels).all() and np.isfinite(joined.errors).all()


@pytest.mark.parametrize("suffix", [".csv", ".xml", ".fits"])
def test_by_key_every_format(archive, stars, tmp_path, suffix):
    path = write(key_table(stars), tmp_path / f"labels{suffix}")
    result = attach(archive.engine, path, "survey", key="target_name")
    assert result.quantities == ["logg", "mh", "teff"]
    assert (result.matched, result.ambiguous, result.unmatched) == (4, 0, 1)
    assert result.n_spectra == sum(len(s.obs_ids) for s in stars[:4])
    assert key_column(archive, "survey") == "target_name"
    rows = stored(archive, "survey")
    a, b, c = (s.name for s in stars[:3])
    assert ("survey", a, "teff", 5000.0, 50.0) in rows
    assert ("survey", b, "logg", 2.5, 0.2) in rows  # e_<label> is an error column too
    assert ("survey", b, "mh", -1.0, None) in rows
    assert not any(k == c and q == "teff" for _, k, q, _, _ in rows)  # NaN skipped
    # rows not (yet) in the archive are kept under their key for spectra to come
    assert any(k == "NOT-IN-ARCHIVE" for _, k, _, _, _ in rows)


@pytest.mark.parametrize("suffix", [".csv", ".xml", ".fits"])
def test_key_column_mapped_from_any_catalogue_column(archive, stars, tmp_path, suffix):
    path = write(key_table(stars, key="object"), tmp_path / f"labels{suffix}")
    result = attach(archive.engine, path, "survey", key="target_name=object")
    assert result.matched == 4
    assert ("survey", stars[0].name, "teff", 5000.0, 50.0) in stored(archive, "survey")

    table = Table({"SPEC": [stars[0].obs_ids[0], stars[1].obs_ids[0]], "teff": [5100.0, 5200.0]})
    result = attach(archive.engine, write(table, tmp_path / f"by_obs{suffix}"), "by-obs",
                    key="obs_id=spec")  # column names in any case
    assert (result.matched, result.unmatched, result.n_spectra) == (2, 0, 2)
    assert key_column(archive, "by-obs") == "obs_id"
    with archive.engine.connect() as conn:
        joined = labelled_spectra(conn, "by-obs")
    assert joined.spectra.obs_id == sorted([stars[0].obs_ids[0], stars[1].obs_ids[0]])


def test_labels_mapped_by_name(archive, stars, tmp_path):
    table = Table({"object": [s.name for s in stars[:3]], "TEFF": [5000.0, 6000.0, 6500.0],
                   "TEFF_ERR": [40.0, 50.0, 60.0], "LOGG": [4.1, 4.2, 4.3],
                   "survey": ["A", "B", "C"], "flag": ["ok", "ok", "bad"]})
    path = write(table, tmp_path / "cat.csv")
    result = attach(archive.engine, path, "survey", key="target_name=object",
                    labels=["teff=TEFF:TEFF_ERR", "LogG=LOGG"])
    assert result.quantities == ["logg", "teff"]  # other columns, text ones too, are ignored
    rows = stored(archive, "survey")
    assert len(rows) == 6
    assert ("survey", stars[2].name, "teff", 6500.0, 60.0) in rows
    assert ("survey", stars[2].name, "logg", 4.3, None) in rows


# -- by position ----------------------------------------------------------------------


def position_table(stars, ra_deg=None, dec_deg=None):
    """Rows: star 0 at 0.3", star 1 twice (0.4" and 0.5"), nowhere, star 2 exactly.

    Within 1 arcsec: star 0 and star 2 match, star 1's two rows are ambiguous, one row
    is unmatched.
    """
    positions = [stars[0].offset(0.3), stars[1].offset(0.4, 0), stars[1].offset(0.5, 180),
                 stars[2].position.directional_offset_by(0 * u.deg, 2 * u.deg),
                 stars[2].position]
    return Table({
        "RAJ2000": [p.ra.deg for p in positions] if ra_deg is None else ra_deg,
        "DEJ2000": [p.dec.deg for p in positions] if dec_deg is None else dec_deg,
        "name": ["first", "second-a", "second-b", "nobody", "third"],
        "TEFF": [5000.0, 6000.0, 6100.0, 4000.0, 4500.0],
        "TEFF_ERR": [50.0, 60.0, 60.0, 40.0, 45.0], "FEH": [0.1, -0.2, -0.3, 0.0, -1.0]})


def test_by_position_counts_and_training_join(archive, stars, tmp_path):
    path = write(position_table(stars), tmp_path / "survey.fits")
    result = attach(archive.engine, path, "survey", match_radius="1arcsec",
                    labels=["teff=TEFF:TEFF_ERR", "mh=FEH"])
    assert (result.matched, result.ambiguous, result.unmatched) == (2, 2, 1)
    labelled = stars[0].obs_ids + stars[2].obs_ids  # every spectrum of the matched stars
    assert result.n_spectra == result.n_objects == len(labelled)
    assert key_column(archive, "survey") == "obs_id"
    assert {k for _, k, _, _, _ in stored(archive, "survey")} == set(labelled)
    assert "1 arcsec: 2 matched, 2 ambiguous (not attached), 1 unmatched" in result.summary()

    with archive.engine.connect() as conn:
        joined = labelled_spectra(conn, "survey")
    assert sorted(joined.spectra.obs_id) == sorted(labelled)
    assert joined.quantities == ["teff", "mh"]
    teff = dict(zip(joined.spectra.obs_id, joined.labels[:, 0], strict=True))
    assert {teff[o] for o in stars[0].obs_ids} == {5000.0}
    assert {teff[o] for o in stars[2].obs_ids} == {4500.0}


def test_one_row_near_several_targets_is_ambiguous(archive, stars, tmp_path):
    coords = SkyCoord([s.position for s in stars])
    separation = coords[:, None].separation(coords[None, :]).deg
    np.fill_diagonal(separation, np.inf)
    i, j = np.unravel_index(np.argmin(separation), separation.shape)
    radius = 0.6 * separation[i, j]
    a, b = coords[i], coords[j]
    midpoint = a.directional_offset_by(a.position_angle(b), a.separation(b) / 2)
    # a star alone within the radius, and far from the midpoint, matches normally
    alone = next(k for k in range(len(stars))
                 if separation[k].min() > radius
                 and coords[k].separation(midpoint).deg > radius)
    table = Table({"ra": [midpoint.ra.deg, coords[alone].ra.deg],
                   "dec": [midpoint.dec.deg, coords[alone].dec.deg], "teff": [5000.0, 5100.0]})
    result = attach(archive.engine, write(table, tmp_path / "wide.csv"), "wide",
                    match_radius=f"{radius} deg")
    assert (result.matched, result.ambiguous, result.unmatched) == (1, 1, 0)
    assert {k for _, k, _, _, _ in stored(archive, "wide")} == set(stars[alone].obs_ids)


def test_match_positions_rules():
    """The rules on positions alone: blends and duplicated rows are never attached."""
    archive = SkyCoord([10.0, 10.0, 20.0, 20.0004, 30.0] * u.deg, [0.0] * 5 * u.deg)
    target_of = np.array([0, 0, 1, 2, 3])  # target 0 observed twice
    catalogue = SkyCoord([10.0001, 20.0002, 30.0, 30.0001, 40.0] * u.deg, [0.0] * 5 * u.deg)
    found = match_positions(catalogue, archive, target_of, 1 * u.arcsec)
    assert found.target.tolist() == [0, -1, -1, -1, -1]
    assert found.ambiguous.tolist() == [False, True, True, True, False]
    assert found.unmatched.tolist() == [False, False, False, False, True]


def test_positions_by_ucd_sexagesimal_and_units(archive, stars, tmp_path):
    table = position_table(stars)
    # VOTable: columns found by UCD alone, sexagesimal text
    sky = SkyCoord(table["RAJ2000"] * u.deg, table["DEJ2000"] * u.deg)
    votable = Table({"alpha": sky.ra.to_string(unit=u.hourangle, sep=":", precision=4),
                     "delta": sky.dec.to_string(unit=u.deg, sep=":", precision=3,
                                                alwayssign=True),
                     "teff": table["TEFF"]})
    votable["alpha"].meta["ucd"] = "pos.eq.ra;meta.main"
    votable["delta"].meta["ucd"] = "pos.eq.dec;meta.main"
    result = attach(archive.engine, write(votable, tmp_path / "ucd.xml"), "ucd",
                    match_radius="1 arcsec")
    assert (result.matched, result.ambiguous, result.unmatched) == (2, 2, 1)
    assert result.quantities == ["teff"]  # the position columns are not labels

    # FITS written by another tool: TUCDn keywords, radians, names unlike any default
    columns = [fits.Column(name="X", format="D", unit="rad", array=sky.ra.rad),
               fits.Column(name="Y", format="D", unit="rad", array=sky.dec.rad),
               fits.Column(name="TEFF", format="D", array=np.asarray(table["TEFF"]))]
    hdu = fits.BinTableHDU.from_columns(columns)
    hdu.header["TUCD1"] = "pos.eq.ra;meta.main"
    hdu.header["TUCD2"] = "pos.eq.dec;meta.main"
    hdu.writeto(tmp_path / "tucd.fits")
    result = attach(archive.engine, tmp_path / "tucd.fits", "tucd", match_radius="1arcsec")
    assert (result.matched, result.ambiguous, result.unmatched) == (2, 2, 1)

    # CSV with explicit --radec and sexagesimal text with letters
    csv = Table({"pos_a": sky.ra.to_string(unit=u.hourangle, precision=4),
                 "pos_d": sky.dec.to_string(unit=u.deg, precision=3),
                 "teff": table["TEFF"]})
    result = attach(archive.engine, write(csv, tmp_path / "named.csv"), "named",
                    match_radius="0.0003deg", radec="pos_a,pos_d")
    assert (result.matched, result.ambiguous, result.unmatched) == (2, 2, 1)

    # a VizieR VOTable: space-separated text with the units "h:m:s" and "d:m:s"
    cells = "".join(
        f"<TR><TD>{p.ra.to_string(unit=u.hourangle, sep=' ', precision=4)}</TD>"
        f"<TD>{p.dec.to_string(unit=u.deg, sep=' ', precision=3, alwayssign=True)}</TD>"
        f"<TD>{teff}</TD></TR>" for p, teff in zip(sky, table["TEFF"], strict=True))
    (tmp_path / "vizier.vot").write_text(
        '<?xml version="1.0"?><VOTABLE version="1.4" '
        'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="RAJ2000" datatype="char" arraysize="*" unit="&quot;h:m:s&quot;" '
        'ucd="pos.eq.ra;meta.main"/>'
        '<FIELD name="DEJ2000" datatype="char" arraysize="*" unit="&quot;d:m:s&quot;" '
        'ucd="pos.eq.dec;meta.main"/><FIELD name="Teff" datatype="double"/>'
        f"<DATA><TABLEDATA>{cells}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")
    result = attach(archive.engine, tmp_path / "vizier.vot", "vizier", match_radius="1arcsec")
    assert (result.matched, result.ambiguous, result.unmatched) == (2, 2, 1)


# -- the same again, replacing, and the command line ---------------------------------------


def test_reattach_same_is_noop_and_changes_need_replace(archive, stars, tmp_path):
    path = write(key_table(stars), tmp_path / "labels.csv")
    attach(archive.engine, path, "survey")
    again = attach(archive.engine, path, "survey", key="target_name")
    assert again.unchanged and (again.matched, again.unmatched) == (4, 1)
    before = stored(archive, "survey")

    # the same file with other options is another set
    with pytest.raises(LabelTableError, match="--replace"):
        attach(archive.engine, path, "survey", labels=["teff=teff"])
    assert stored(archive, "survey") == before
    attach(archive.engine, path, "survey", labels=["teff=teff"], replace=True)
    assert {q for _, _, q, _, _ in stored(archive, "survey")} == {"teff"}

    # a changed file too
    table = key_table(stars)
    table["teff"][0] = 5100.0
    write(table, path)
    with pytest.raises(LabelTableError, match="--replace"):
        attach(archive.engine, path, "survey", labels=["teff=teff"])
    attach(archive.engine, path, "survey", labels=["teff=teff"], replace=True)
    assert ("survey", stars[0].name, "teff", 5100.0, None) in stored(archive, "survey")


def test_cli_reports_counts_and_errors(archive, stars, tmp_path, latentvo_env):
    path = write(position_table(stars), tmp_path / "survey.xml")
    done = run_cli(latentvo_env, "labels", "attach", str(path), "--match-radius", "1arcsec",
                   "--label", "teff=TEFF:TEFF_ERR", "--label", "mh=FEH")
    assert done.returncode == 0, done.stderr
    assert "label set 'survey' attached" in done.stderr
    assert "2 matched, 2 ambiguous (not attached), 1 unmatched" in done.stderr
    failed = run_cli(latentvo_env, "labels", "attach", str(path), "--name", "other",
                     "--match-radius", "1arcsec", "--label", "teff=TEMP")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"error: {path}: no label (teff) column 'TEMP' (columns: RAJ2000, DEJ2000, name, "
        "TEFF, TEFF_ERR, FEH)"]


# -- errors: one line, nothing stored changes ---------------------------------------------

POSITIONS = "ra,dec,teff\n{ra0},{dec0},5000\n"
ERRORS = [
    # catalogue columns and values, by key
    ("object,teff\n{s0},5000\n", {}, "no key column 'target_name'"),
    ("object,teff\n{s0},5000\n", {"key": "target_name=name"}, "no key column 'name'"),
    ("target_name,teff\n{s0},5000\n{s1},hot\n", {},
     r"column 'teff', row 2: 'hot' is not numeric \(name the label columns with --label\)"),
    ("target_name,TEFF\n{s0},5000\n{s1},hot\n", {"labels": ["teff=TEFF"]},
     "column 'TEFF', row 2: 'hot' is not numeric"),
    ("target_name,teff,TEFF_ERR\n{s0},5000,x\n", {"labels": ["teff=teff:TEFF_ERR"]},
     "column 'TEFF_ERR', row 1: 'x' is not numeric"),
    ("target_name,teff\n{s0},5000\n{s0},5100\n", {}, "duplicates: '{s0}' in rows 1 and 2"),
    ("target_name,teff\n{s0},5000\n,5100\n", {}, "key column 'target_name', row 2 is empty"),
    ("target_name\n{s0}\n", {}, "no numeric label columns besides target_name"),
    ("target_name,teff\n{s0},5000\n", {"labels": ["teff=TEF"]}, "no label \\(teff\\) column"),
    ("target_name,teff\n{s0},5000\n", {"labels": ["teff=teff:teff_e"]},
     "no error \\(teff\\) column 'teff_e'"),
    ("target_name,teff\n{s0},\n", {}, "matched rows have no label values"),
    ("target_name,teff\n", {}, "the catalogue has no rows"),
    # nothing matches
    ("target_name,teff\nnobody,5000\nnoone,5100\n", {},
     "none of the 2 keys in column 'target_name' is the target_name of a spectrum"),
    ("target_name,teff\n{s0},5000\n", {"key": "obs_id=target_name"},
     "none of the 1 keys in column 'target_name' is the obs_id"),
    ("ra,dec,teff\n{far_ra},{far_dec},5000\n", {"match_radius": "1arcsec"},
     r"no catalogue row matches an archive target one-to-one within 1 arcsec "
     r"\(0 ambiguous, 1 unmatched\)"),
    # positions
    ("alpha,delta,teff\n1,2,5000\n", {"match_radius": "1arcsec"}, "no RA column found"),
    ("ra,delta,teff\n1,2,5000\n", {"match_radius": "1arcsec"}, "no DEC column found"),
    (POSITIONS, {"match_radius": "1arcsec", "radec": "ra,decl"},
     r"no Dec \(--radec\) column 'decl'"),
    ("ra,dec,teff\nabc,2,5000\n", {"match_radius": "1arcsec"},
     "column 'ra', row 1: 'abc' is not an angle"),
    ("ra,dec,teff\n1,2,5000\n1,95,5000\n", {"match_radius": "1arcsec"},
     "column 'dec', row 2: declination 95 deg is outside"),
    ("ra,dec,teff\n1,2,5000\n,3,5000\n", {"match_radius": "1arcsec"},
     "column 'ra', row 2 has no position"),
    # options
    (POSITIONS, {"key": "name"}, "--key must be one of target_name, obs_id"),
    (POSITIONS, {"key": "target_name", "match_radius": "1arcsec"}, "exclude each other"),
    (POSITIONS, {"radec": "ra,dec"}, "--radec needs --match-radius"),
    (POSITIONS, {"match_radius": "1arcsec", "radec": "ra"}, "expected RA_COLUMN,DEC_COLUMN"),
    (POSITIONS, {"match_radius": "5 km"}, "is not an angle"),
    (POSITIONS, {"match_radius": "wide"}, "is not an angle"),
    (POSITIONS, {"match_radius": "-1arcsec"}, "must be a positive angle"),
    (POSITIONS, {"match_radius": "1arcsec", "labels": ["teff"]}, "expected LABEL=COLUMN"),
    (POSITIONS, {"match_radius": "1arcsec", "labels": ["t eff=teff"]}, "expected LABEL=COLUMN"),
    (POSITIONS, {"match_radius": "1arcsec", "labels": ["teff=teff", "TEFF=teff"]},
     "maps 'teff' more than once"),
]


@pytest.mark.parametrize("content, options, message", ERRORS)
def test_errors_are_one_line_and_store_nothing(archive, stars, tmp_path, content, options,
                                               message):
    good = write(key_table(stars), tmp_path / "good.csv")
    attach(archive.engine, good, "survey")
    before = stored(archive)
    far = stars[0].position.directional_offset_by(0 * u.deg, 3 * u.deg)
    path = tmp_path / "bad.csv"
    path.write_text(content.format(s0=stars[0].name, s1=stars[1].name,
                                   ra0=stars[0].position.ra.deg,
                                   dec0=stars[0].position.dec.deg,
                                   far_ra=far.ra.deg, far_dec=far.dec.deg))
    with pytest.raises(LabelTableError, match=message.format(s0=stars[0].name)) as caught:
        attach(archive.engine, path, "survey", replace=True, **options)
    assert "\n" not in str(caught.value)
    assert stored(archive) == before


def test_unreadable_and_missing_files(archive, tmp_path):
    with pytest.raises(LabelTableError, match="no such file"):
        attach(archive.engine, tmp_path / "absent.csv", "x")
    (tmp_path / "junk.fits").write_bytes(b"not a table at all")
    with pytest.raises(LabelTableError, match="cannot read as a table"):
        attach(archive.engine, tmp_path / "junk.fits", "x")
    assert stored(archive) == []
