"""The RegTAP 1.1 ``rr`` schema: this site's registry records as relational tables.

RegTAP (IVOA Registry Relational Schema 1.1) is how clients such as
``pyvo.registry`` and TOPCAT search a registry with ADQL. latentvo serves the
records of its own publishing registry this way through its TAP service, so a
client pointed at ``<base>/tap`` discovers its services and collections. The
fourteen tables are declared here once, with the names, types, UCDs and
descriptions RegTAP gives them; each column's utype is ``xpath:`` and the
VOResource path its value comes from, as the standard writes them. The rows are
derived from the records by :mod:`vo_service.registry.regtap`.

Columns holding identifiers and terms of controlled vocabularies (ivoids,
standard ids, xsi types, content levels, wavebands...) are lower-cased, as
RegTAP 1.1 requires, so that queries compare them with ``=``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from schema.tables import metadata
from schema.vo import SQLType, VOTable, vo_column, vo_table

RR_SCHEMA = "rr"
RR_DESCRIPTION = ("The IVOA Registry Relational Schema (RegTAP 1.1) over this site's own "
                  "registry records, for resource discovery with pyvo.registry or TOPCAT")

# RegTAP's tables follow TAP_SCHEMA's (900s) in listings.
_FIRST_INDEX = 950


def words_sql(column: str) -> str:
    """The full-text vector of a column, as ``ivo_hasword`` tests it (and its index holds)."""
    return f"to_tsvector('simple'::regconfig, {column})"


def _col(name: str, sqltype: SQLType, description: str, xpath: str | None, ucd: str | None,
         *args: sa.schema.SchemaItem, **kw: Any) -> sa.Column[Any]:
    """A RegTAP column: standard, principal, its utype the xpath it is filled from."""
    return vo_column(name, sqltype, *args, description=description, ucd=ucd,
                     utype=f"xpath:{xpath}" if xpath else None, std=True, principal=True,
                     **kw)


def _ivoid(*args: sa.schema.SchemaItem, **kw: Any) -> sa.Column[Any]:
    return _col("ivoid", sa.Text, "The parent resource (lower-cased IVOA identifier).",
                "/identifier", "meta.ref.ivoid", *args, nullable=False, **kw)


def _rr_table(name: str, index: int, description: str, xpath: str,
              *columns: sa.schema.SchemaItem) -> sa.Table:
    return vo_table(name, metadata, *columns, schema=RR_SCHEMA,
                    vo=VOTable(description=description, utype=f"xpath:{xpath}",
                               table_index=_FIRST_INDEX + index))


resource = _rr_table(
    "resource", 0, "The resources (services, collections, organisations...) of the registry.",
    "/",
    _ivoid(primary_key=True),
    _col("res_type", sa.Text, "Resource type (something like vs:catalogservice, "
         "vs:datacollection, vg:registry), lower-cased.", "/@xsi:type", "src.class",
         nullable=False),
    _col("created", sa.DateTime(timezone=True), "The UTC date and time this resource "
         "metadata description was created.", "/@created", "time.creation", nullable=False),
    _col("short_name", sa.Text, "A short name or abbreviation given to something, for "
         "presentation in space-constrained fields (up to 16 characters).", "/shortName",
         "meta.id"),
    _col("res_title", sa.Text, "The full name given to the resource.", "/title",
         "meta.title", nullable=False),
    _col("updated", sa.DateTime(timezone=True), "The UTC date this resource metadata "
         "description was last updated.", "/@updated", "time.processing", nullable=False),
    _col("content_level", sa.Text, "A hash-separated list of content levels specifying the "
         "intended audience, lower-cased.", "/content/contentLevel", "meta.code"),
    _col("res_description", sa.Text, "An account of the nature of the resource.",
         "/content/description", "meta.note"),
    _col("reference_url", sa.Text, "URL pointing to a human-readable document describing "
         "this resource.", "/content/referenceURL", "meta.ref.url"),
    _col("creator_seq", sa.Text, "The creator(s) of the resource in the order given by the "
         "resource record author, separated by semicolons.", "/curation/creator/name",
         "meta.bib.author"),
    _col("content_type", sa.Text, "A hash-separated list of natures or genres of the "
         "content of the resource, lower-cased.", "/content/type", "meta.code.class"),
    _col("source_format", sa.Text, "The format of source_value; recognised values are "
         "bibcode and doi.", "/content/source/@format", "meta.code.class"),
    _col("source_value", sa.Text, "A bibliographic reference from which the present "
         "resource is derived or extracted.", "/content/source", "meta.bib"),
    _col("res_version", sa.Text, "Label associated with creation or availability of a "
         "version of a resource.", "/curation/version", "meta.version"),
    _col("region_of_regard", sa.REAL, "A single numeric value representing the angle, given "
         "in decimal degrees, by which a positional query against this resource should be "
         "blurred in order to get an appropriate match.", "/coverage/regionOfRegard",
         "pos.angResolution", unit="deg"),
    _col("waveband", sa.Text, "A hash-separated list of regions of the electro-magnetic "
         "spectrum that the resource's spectral coverage overlaps with, lower-cased.",
         "/coverage/waveband", "instr.bandpass"),
    _col("rights", sa.Text, "A statement of usage conditions (license, attribution, "
         "embargo, etc); several are hash-separated.", "/rights", "meta.note"),
    _col("rights_uri", sa.Text, "A URI identifying a license the data is made available "
         "under.", "/rights/@rightsURI", "meta.ref.url"),
    _col("harvested_from", sa.Text, "IVOA identifier of the registry this record came "
         "from, lower-cased.", None, "meta.ref.ivoid"),
    # pyvo.registry's keyword search is 1 = ivo_hasword(res_description | res_title, word),
    # which the translator writes as this full-text match (vo_service.adql.functions)
    *(sa.Index(f"ix_resource_{column}_words", sa.text(f"{words_sql(column)}"),
               postgresql_using="gin") for column in ("res_description", "res_title")),
)



def _child_ivoid(**kw: Any) -> sa.Column[Any]:
    """The ``ivoid`` of a table of resource parts: a foreign key to ``rr.resource``."""
    return _ivoid(sa.ForeignKey(resource.c.ivoid), **kw)

res_role = _rr_table(
    "res_role", 1, "Entities (persons, organisations) related to resources: creators, "
    "contacts, publishers, contributors.", "/curation/*",
    _child_ivoid(index=True),
    _col("role_name", sa.Text, "The real-world name or title of a person or organisation.",
         "/curation/*/name", "meta.id"),
    _col("role_ivoid", sa.Text, "An IVOA identifier of a person or organisation, "
         "lower-cased.", "/curation/*/name/@ivo-id", "meta.ref.ivoid"),
    _col("street_address", sa.Text, "A mailing address for a person or organisation.",
         "/curation/*/address", "meta.note"),
    _col("email", sa.Text, "An email address the entity can be reached at.",
         "/curation/*/email", "meta.email"),
    _col("telephone", sa.Text, "A telephone number the entity can be reached at.",
         "/curation/*/telephone", "meta.note"),
    _col("logo", sa.Text, "URL pointing to a graphical logo, which may be used to help "
         "identify the entity.", "/curation/*/logo", "meta.ref.url"),
    _col("base_role", sa.Text, "The role played by this entity; this is one of contact, "
         "publisher, contributor, and creator.", None, "meta.code"),
)

res_subject = _rr_table(
    "res_subject", 2, "Topics, object types, or other descriptive keywords about the "
    "resource.", "/content/subject",
    _child_ivoid(primary_key=True),
    _col("res_subject", sa.Text, "Topics, object types, or other descriptive keywords "
         "about the resource.", "/content/subject", "meta.note", primary_key=True),
)

capability = _rr_table(
    "capability", 3, "Pieces of behaviour of a resource.", "/capability",
    _child_ivoid(primary_key=True),
    _col("cap_index", sa.SmallInteger, "An arbitrary identifier of this capability within "
         "the resource.", None, "meta.number", primary_key=True, autoincrement=False),
    _col("cap_name", sa.Text, "The name of the capability (not used by VOResource 1.1).",
         None, "meta.id"),
    _col("cap_type", sa.Text, "The type of capability covered here (e.g., "
         "tr:tableaccess), lower-cased.", "/capability/@xsi:type", "meta.code"),
    _col("cap_description", sa.Text, "A human-readable description of what this capability "
         "provides as part of the over-all service.", "/capability/description",
         "meta.note"),
    _col("standard_id", sa.Text, "A URI for a standard this capability conforms to, "
         "lower-cased.", "/capability/@standardID", "meta.ref.ivoid", index=True),
)

res_schema = _rr_table(
    "res_schema", 4, "Sets of tables related to resources.", "/tableset/schema",
    _child_ivoid(primary_key=True),
    _col("schema_index", sa.SmallInteger, "An arbitrary identifier for the res_schema rows "
         "belonging to a resource.", None, "meta.number", primary_key=True,
         autoincrement=False),
    _col("schema_description", sa.Text, "A free text description of the tableset explaining "
         "in general how all of the tables are related.", "/tableset/schema/description",
         "meta.note"),
    _col("schema_name", sa.Text, "A name for the set of tables.", "/tableset/schema/name",
         "meta.id"),
    _col("schema_title", sa.Text, "A descriptive, human-interpretable name for the table "
         "set.", "/tableset/schema/title", "meta.title"),
    _col("schema_utype", sa.Text, "An identifier for a concept in a data model that the "
         "data in this schema as a whole represent, lower-cased.",
         "/tableset/schema/utype", "meta.id"),
)

res_table = _rr_table(
    "res_table", 5, "(Relational) tables that are part of schemata or resources.",
    "/(tableset/schema/|resource/)table",
    _child_ivoid(primary_key=True),
    _col("schema_index", sa.SmallInteger, "Index of the schema this table belongs to, if "
         "it belongs to a schema (otherwise NULL).", None, "meta.number"),
    _col("table_description", sa.Text, "A free-text description of the table's contents.",
         "/tableset/schema/table/description", "meta.note"),
    _col("table_name", sa.Text, "The fully qualified name of the table.",
         "/tableset/schema/table/name", "meta.id"),
    _col("table_index", sa.SmallInteger, "An arbitrary identifier for the tables belonging "
         "to a resource.", None, "meta.number", primary_key=True, autoincrement=False),
    _col("table_title", sa.Text, "A descriptive, human-interpretable name for the table.",
         "/tableset/schema/table/title", "meta.title"),
    _col("table_type", sa.Text, "A name for the role this table plays (output, base_table, "
         "view), lower-cased.", "/tableset/schema/table/@type", "meta.code"),
    _col("table_utype", sa.Text, "An identifier for a concept in a data model that the "
         "data in this table represent, lower-cased.", "/tableset/schema/table/utype",
         "meta.id"),
    _col("nrows", sa.BigInteger, "The approximate size of the table in rows.",
         "/tableset/schema/table/nrows", "meta.number"),
)

table_column = _rr_table(
    "table_column", 6, "Metadata on columns of a resource's tables.",
    "/tableset/schema/table/column",
    _child_ivoid(index=True),
    _col("table_index", sa.SmallInteger, "Index of the table this column belongs to.",
         None, "meta.number", nullable=False),
    _col("name", sa.Text, "The name of the column.", "/tableset/schema/table/column/name",
         "meta.id"),
    _col("ucd", sa.Text, "A unified content descriptor that describes the scientific "
         "content of the column.", "/tableset/schema/table/column/ucd", "meta.ucd"),
    _col("unit", sa.Text, "The unit associated with all values in the column.",
         "/tableset/schema/table/column/unit", "meta.unit"),
    _col("utype", sa.Text, "An identifier for a role in a data model that the data in this "
         "column represents, lower-cased.", "/tableset/schema/table/column/utype",
         "meta.id"),
    _col("datatype", sa.Text, "The type of the data contained in the column, lower-cased.",
         "/tableset/schema/table/column/dataType", "meta.code"),
    _col("extended_schema", sa.Text, "An identifier for the schema that the value given "
         "by the extended attribute is drawn from.",
         "/tableset/schema/table/column/dataType/@extendedSchema", "meta.code"),
    _col("extended_type", sa.Text, "A custom type for the values this column contains.",
         "/tableset/schema/table/column/dataType/@extendedType", "meta.code"),
    _col("arraysize", sa.Text, "The shape of the array that constitutes the value, e.g., "
         "4, *, 4*, 5x4, or 5x*.", "/tableset/schema/table/column/dataType/@arraysize",
         "meta.code"),
    _col("delim", sa.Text, "The string that is used to delimit elements of an array value "
         "when arraysize is not '1'.", "/tableset/schema/table/column/dataType/@delim",
         "meta.code"),
    _col("type_system", sa.Text, "The type system used, as a QName with a canonical "
         "prefix, lower-cased (e.g., vs:votabletype).",
         "/tableset/schema/table/column/dataType/@xsi:type", "meta.code"),
    _col("flag", sa.Text, "Hash-separated keywords representing traits of the column "
         "(indexed, primary, nullable...).", "/tableset/schema/table/column/flag",
         "meta.code"),
    _col("column_description", sa.Text, "A free-text description of the column's contents.",
         "/tableset/schema/table/column/description", "meta.note"),
    sa.Index("ix_table_column_name", "name"),
)

interface = _rr_table(
    "interface", 7, "Information on access modes of a capability.", "/capability/interface",
    _child_ivoid(primary_key=True),
    _col("cap_index", sa.SmallInteger, "The index of the parent capability.", None,
         "meta.number"),
    _col("intf_index", sa.SmallInteger, "An arbitrary identifier for the interfaces of a "
         "resource.", None, "meta.number", primary_key=True, autoincrement=False),
    _col("intf_type", sa.Text, "The type of the interface (vs:paramhttp, vr:webbrowser, "
         "etc), lower-cased.", "/capability/interface/@xsi:type", "meta.code"),
    _col("intf_role", sa.Text, "An identifier for the role the interface plays in the "
         "particular capability (std for a standard interface).",
         "/capability/interface/@role", "meta.code"),
    _col("std_version", sa.Text, "The version of a standard interface specification that "
         "this interface complies with.", "/capability/interface/@version", "meta.version"),
    _col("query_type", sa.Text, "Hash-joined list of expected HTTP method (get or post) "
         "supported by the service, lower-cased.", "/capability/interface/queryType",
         "meta.code"),
    _col("result_type", sa.Text, "The MIME type of a document returned in the HTTP "
         "response.", "/capability/interface/resultType", "meta.code.mime"),
    _col("wsdl_url", sa.Text, "The location of the WSDL that describes this Web Service.",
         "/capability/interface/wsdlURL", "meta.ref.url"),
    _col("url_use", sa.Text, "A flag indicating whether this should be interpreted as a "
         "base URL (base), a full URL (full), or a URL to a directory that will produce a "
         "listing of files (dir), lower-cased.", "/capability/interface/accessURL/@use",
         "meta.code"),
    _col("access_url", sa.Text, "The URL at which the interface is found.",
         "/capability/interface/accessURL", "meta.ref.url"),
    _col("mirror_url", sa.Text, "Secondary access URLs of this interface, separated by "
         "hash marks.", "/capability/interface/mirrorURL", "meta.ref.url"),
    _col("authenticated_only", sa.SmallInteger, "A flag for whether an interface is "
         "available for anonymous use (0) or only authenticated clients are served (1).",
         None, "meta.code"),
    _col("security_method_id", sa.Text, "The standard id of the security method an "
         "interface supports (NULL for anonymous access), lower-cased.",
         "/capability/interface/securityMethod/@standardID", "meta.code"),
    sa.Index("ix_interface_ivoid_cap_index", "ivoid", "cap_index"),
)

intf_param = _rr_table(
    "intf_param", 8, "Input parameters for services.", "/capability/interface/param",
    _child_ivoid(index=True),
    _col("intf_index", sa.SmallInteger, "The index of the interface this parameter belongs "
         "to.", None, "meta.number", nullable=False),
    _col("name", sa.Text, "The name of the parameter.", "/capability/interface/param/name",
         "meta.id"),
    _col("ucd", sa.Text, "A unified content descriptor that describes the scientific "
         "content of the parameter.", "/capability/interface/param/ucd", "meta.ucd"),
    _col("unit", sa.Text, "The unit associated with all values in the parameter.",
         "/capability/interface/param/unit", "meta.unit"),
    _col("utype", sa.Text, "An identifier for a role in a data model that the data in this "
         "parameter represents, lower-cased.", "/capability/interface/param/utype",
         "meta.id"),
    _col("std", sa.SmallInteger, "If 1, the meaning and use of this parameter is reserved "
         "and defined by a standard model; if 0, it represents a database-specific "
         "parameter.", "/capability/interface/param/@std", "meta.code"),
    _col("datatype", sa.Text, "The type of the data contained in the parameter, "
         "lower-cased.", "/capability/interface/param/dataType", "meta.code"),
    _col("extended_schema", sa.Text, "An identifier for the schema that the value given "
         "by the extended attribute is drawn from.",
         "/capability/interface/param/dataType/@extendedSchema", "meta.code"),
    _col("extended_type", sa.Text, "A custom type for the values this parameter contains.",
         "/capability/interface/param/dataType/@extendedType", "meta.code"),
    _col("arraysize", sa.Text, "The shape of the array that constitutes the value, e.g., "
         "4, *, 4*, 5x4, or 5x*.", "/capability/interface/param/dataType/@arraysize",
         "meta.code"),
    _col("delim", sa.Text, "The string that is used to delimit elements of an array value "
         "when arraysize is not '1'.", "/capability/interface/param/dataType/@delim",
         "meta.code"),
    _col("param_use", sa.Text, "An indication of whether this parameter is required to be "
         "provided for the application or service to work properly (one of required, "
         "optional, ignored, or NULL), lower-cased.", "/capability/interface/param/@use",
         "meta.code"),
    _col("param_description", sa.Text, "A free-text description of the parameter's "
         "contents.", "/capability/interface/param/description", "meta.note"),
)

relationship = _rr_table(
    "relationship", 9, "Relationships between resources (e.g., mirroring, derivation, "
    "serving a data collection).", "/content/relationship",
    _child_ivoid(index=True),
    _col("relationship_type", sa.Text, "The named type of relationship (for instance "
         "isservedby, isderivedfrom), lower-cased.",
         "/content/relationship/relationshipType", "meta.code"),
    _col("related_id", sa.Text, "The IVOA identifier for the resource referred to, "
         "lower-cased.", "/content/relationship/relatedResource/@ivo-id", "meta.ref.ivoid",
         index=True),
    _col("related_name", sa.Text, "The name of resource that this resource is related to.",
         "/content/relationship/relatedResource", "meta.id"),
)

validation = _rr_table(
    "validation", 10, "Validation levels for resources and capabilities.",
    "/(capability/)validationLevel",
    _child_ivoid(index=True),
    _col("validated_by", sa.Text, "The IVOA ID of the registry or organisation that "
         "assigned the validation level, lower-cased.", "/validationLevel/@validatedBy",
         "meta.ref.ivoid"),
    _col("val_level", sa.SmallInteger, "A numeric grade describing the quality of the "
         "resource description, when applicable, to be used to indicate the confidence "
         "an end-user can put in the resource as part of a VO application or research "
         "study.", "/validationLevel", "meta.code.qual"),
    _col("cap_index", sa.SmallInteger, "If non-NULL, the validation only refers to the "
         "capability referenced here.", None, "meta.number"),
)

res_date = _rr_table(
    "res_date", 11, "A date associated with an event in the life cycle of the resource.",
    "/curation/date",
    _child_ivoid(index=True),
    _col("date_value", sa.DateTime(timezone=True), "A date associated with an event in the "
         "life cycle of the resource.", "/curation/date", "time"),
    _col("value_role", sa.Text, "A string indicating what the date refers to, e.g., "
         "created, availability, updated, lower-cased.", "/curation/date/@role",
         "meta.code"),
)

res_detail = _rr_table(
    "res_detail", 12, "XPath-value pairs for members of resource or capability and their "
    "derivations that are less used and/or from VOResource extensions.", "/",
    _child_ivoid(index=True),
    _col("cap_index", sa.SmallInteger, "The index of the parent capability; if NULL the "
         "xpath-value pair describes a member of the entire resource.", None,
         "meta.number"),
    _col("detail_xpath", sa.Text, "The xpath of the data item.", None, "meta.id"),
    _col("detail_value", sa.Text, "(Atomic) value of the member.", None, "meta.note"),
    sa.Index("ix_res_detail_detail_xpath", "detail_xpath"),
)

alt_identifier = _rr_table(
    "alt_identifier", 13, "Alternate identifiers for the resource, e.g., DOIs or ORCIDs "
    "(as URIs: doi:..., orcid:...).", "/altIdentifier",
    _child_ivoid(index=True),
    _col("alt_identifier", sa.Text, "An alternate identifier for the resource, as a URI.",
         "/altIdentifier", "meta.id"),
)

RR_TABLES: tuple[sa.Table, ...] = (
    resource, res_role, res_subject, capability, res_schema, res_table, table_column,
    interface, intf_param, relationship, validation, res_date, res_detail, alt_identifier)
"""The fourteen tables, parents before children (insert order; delete in reverse)."""
