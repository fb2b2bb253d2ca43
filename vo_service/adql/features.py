"""The ADQL language features and UDFs this service declares in TAPRegExt.

The TAP capabilities document renders :data:`LANGUAGE_FEATURES` as
``<languageFeatures type="...">`` groups of ``<feature><form/><description/>``.
Type IVOIDs use the ``ivo://ivoa.net/std/TAPRegExt#`` spelling that pyvo
looks for; forms are written exactly as pyvo compares them (upper case for
ADQL's own keywords).
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.adql import latent
from vo_service.adql.functions import IVO_UDFS, UDF

UDFS: tuple[UDF, ...] = (*latent.UDFS, *IVO_UDFS)
"""Every user-defined function on offer: latentvo's ``lvo_`` and the IVOA ``ivo_`` ones."""
UDF_NAMES = frozenset(u.name for u in UDFS)

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
ADQL_VERSIONS = (("2.1", "ivo://ivoa.net/std/ADQL#v2.1"), ("2.0", "ivo://ivoa.net/std/ADQL#v2.0"))


@dataclass(frozen=True)
class Feature:
    """One ``<feature>`` of TAPRegExt: a form as pyvo matches it, and what it does here."""

    form: str
    description: str | None = None


@dataclass(frozen=True)
class FeatureGroup:
    """The features of one ``<languageFeatures type="...">`` group."""

    type: str  # the feature type IVOID
    features: tuple[Feature, ...]


def _forms(*forms: str) -> tuple[Feature, ...]:
    return tuple(Feature(f) for f in forms)


_GEO_NOTE = ("ICRS only (the coordinate-system argument may be omitted; a computed one is "
             "ignored); exact great-circle tests, served by the HEALPix index of tables with "
             "a sky position.")

LANGUAGE_FEATURES: tuple[FeatureGroup, ...] = (
    FeatureGroup(f"{TAPREGEXT}#features-adqlgeo", (
        Feature("POINT", "POINT([coordsys,] ra, dec); returned as a DALI point (double[2])."),
        Feature("CIRCLE", "CIRCLE([coordsys,] ra, dec, radius) or CIRCLE(point, radius); "
                "returned as a DALI circle (double[3])."),
        Feature("BOX", "BOX([coordsys,] ra, dec, width, height) or BOX(point, width, height): "
                "the polygon with corners (ra±width/2, dec±height/2); in conditions its "
                "arguments must be constant."),
        Feature("POLYGON", "POLYGON([coordsys,] ra1, dec1, ...) or POLYGON(p1, p2, ...); "
                "either vertex order means the smaller region; in conditions the vertices "
                "must be constant and the polygon must fit in a hemisphere."),
        Feature("DISTANCE", "DISTANCE(p1, p2) or DISTANCE(ra1, dec1, ra2, dec2) in degrees; "
                "DISTANCE(...) < r on a table position uses its index. " + _GEO_NOTE),
        Feature("CONTAINS", "point in circle/polygon/box, circle in circle/polygon, polygon "
                "in circle. " + _GEO_NOTE),
        Feature("INTERSECTS", "any pair among point, circle and constant polygon/box except "
                "two polygons."),
        Feature("AREA", "in square degrees."),
        Feature("CENTROID", "of a point, circle or constant polygon."),
        Feature("COORD1"), Feature("COORD2"), Feature("COORDSYS", "always 'ICRS'."),
    )),
    FeatureGroup(f"{TAPREGEXT}#features-adql-string", _forms("LOWER", "UPPER", "ILIKE")),
    FeatureGroup(f"{TAPREGEXT}#features-adql-sets", _forms("UNION", "EXCEPT", "INTERSECT")),
    FeatureGroup(f"{TAPREGEXT}#features-adql-common-table", _forms("WITH")),
    FeatureGroup(f"{TAPREGEXT}#features-adql-type", (
        Feature("CAST", "to SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR(n), "
                "VARCHAR(n), TIMESTAMP, and from DALI strings to POINT, CIRCLE, POLYGON."),
    )),
    FeatureGroup(f"{TAPREGEXT}#features-adql-conditional", _forms("COALESCE")),
    FeatureGroup(f"{TAPREGEXT}#features-adql-unit", (
        Feature("IN_UNIT", "converts columns with a known VO unit (astropy.units)."),
    )),
    FeatureGroup(f"{TAPREGEXT}#features-adql-offset", _forms("OFFSET")),
    FeatureGroup(f"{TAPREGEXT}#features-udf", tuple(Feature(u.form, u.description)
                                                   for u in UDFS)),
)

# Beyond ADQL 2.1 (documented, not declared under TAPRegExt keys): CASE, NULLIF,
# hexadecimal literals, the bitwise operators & | ^ ~, and TRUE/FALSE literals.
EXTENSIONS: tuple[str, ...] = ("CASE", "NULLIF", "hexadecimal literals",
                               "bitwise operators & | ^ ~", "TRUE/FALSE")
