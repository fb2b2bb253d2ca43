"""The RegTAP 1.1 ``rr`` schema: this site's registry records as relational tables.

RegTAP (IVOA Registry Relational Schema) is how clients such as ``pyvo.registry``
and TOPCAT search a registry with ADQL. latentvo serves the records of its own
publishing registry this way through its TAP service, so a client pointed at
``<base>/tap`` discovers its services and collections. The fourteen tables are
declared here once, as RegTAP 1.1 defines them: names, types and utypes (``xpath:``
and the VOResource path a value comes from, relative to the table's utype when it
does not start with ``/``); the descriptions are the standard's (not normative);
UCDs and units are NULL, as the standard requires for its columns. The rows are
derived from the records by :mod:`vo_service.registry.regtap`, which also applies
RegTAP's lower-casing rules.

Keys and indexes follow the standard's recommendations: every table's ``ivoid``
refers to ``rr.resource``, and the full-text indexes on ``res_description`` and
``res_title`` serve ``1 = ivo_hasword(...)``, pyvo.registry's keyword search.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from schema.tables import metadata
from schema.vo import SQLType, VOTable, vo_column, vo_table

RR_SCHEMA = "rr"
RR_DESCRIPTION = ("The IVOA Registry Relational Schema (RegTAP 1.1) over this site's own "
                  "registry records, for resource discovery with pyvo.registry or TOPCAT")
RR_UTYPE = "ivo://ivoa.net/std/RegTAP#1.1"
"""The schema's utype in TAP_SCHEMA and VOSI tables, as RegTAP requires."""

# RegTAP's tables follow TAP_SCHEMA's (900s) in listings.
_FIRST_INDEX = 950
_TIMESTAMP = sa.DateTime(timezone=True)


def words_sql(column: str) -> str:
    """The full-text vector of a column, as ``ivo_hasword`` tests it (and its index holds)."""
    return f"to_tsvector('simple'::regconfig, {column})"


def _col(name: str, sqltype: SQLType, utype: str | None, description: str,
         *args: sa.schema.SchemaItem, **kw: Any) -> sa.Column[Any]:
    """A RegTAP column: standard and principal, with the standard's utype, no UCD or unit."""
    return vo_column(name, sqltype, *args, description=description, utype=utype, std=True,
                     principal=True, **kw)


def _child_ivoid(**kw: Any) -> sa.Column[Any]:
    """The ``ivoid`` of a table of resource parts: a foreign key to ``rr.resource``."""
    return _col("ivoid", sa.Text, "xpath:/identifier", "The parent resource.",
                sa.ForeignKey("rr.resource.ivoid"), nullable=False, **kw)


def _rr_table(name: str, index: int, utype: str | None, description: str,
              *columns: sa.schema.SchemaItem) -> sa.Table:
    return vo_table(name, metadata, *columns, schema=RR_SCHEMA,
                    vo=VOTable(description=description, utype=utype,
                               table_index=_FIRST_INDEX + index))


resource = _rr_table(
    "resource", 0, 'xpath:/',
    'The resources (like services, data collections, organizations) present in this registry.',
    _col("ivoid", sa.Text, 'xpath:identifier',
         'Unambiguous reference to the resource conforming to the IVOA standard for identifiers.',
         primary_key=True),
    _col("res_type", sa.Text, 'xpath:@xsi:type',
         'Resource type (something like vg:authority, vs:catalogservice, etc).', nullable=False),
    _col("created", _TIMESTAMP, 'xpath:@created',
         'The UTC date and time this resource metadata description was created.', nullable=False),
    _col("short_name", sa.Text, 'xpath:shortName',
         'A short name or abbreviation given to something, for presentation in space-constrained '
         'fields (up to 16 characters).'),
    _col("res_title", sa.Text, 'xpath:title',
         'The full name given to the resource.', nullable=False),
    _col("updated", _TIMESTAMP, 'xpath:@updated',
         'The UTC date this resource metadata description was last updated.', nullable=False),
    _col("content_level", sa.Text, 'xpath:content/contentLevel',
         'A hash-separated list of content levels specifying the intended audience.'),
    _col("res_description", sa.Text, 'xpath:content/description',
         'An account of the nature of the resource.'),
    _col("reference_url", sa.Text, 'xpath:content/referenceURL',
         'URL pointing to a human-readable document describing this resource.'),
    _col("creator_seq", sa.Text, 'xpath:curation/creator/name',
         'The creator(s) of the resource in the order given by the resource record author, '
         'separated by semicolons.'),
    _col("content_type", sa.Text, 'xpath:content/type',
         'A hash-separated list of natures or genres of the content of the resource.'),
    _col("source_format", sa.Text, 'xpath:content/source/@format',
         'The format of source_value. This, in particular, can be "bibcode".'),
    _col("source_value", sa.Text, 'xpath:content/source',
         'A bibliographic reference from which the present resource is derived or extracted.'),
    _col("res_version", sa.Text, 'xpath:curation/version',
         'Label associated with creation or availability of a version of a resource.'),
    _col("region_of_regard", sa.REAL, 'xpath:coverage/regionOfRegard',
         'A single numeric value representing the angle, given in decimal degrees, by which a '
         'positional query against this resource should be "blurred" in order to get an '
         'appropriate match.'),
    _col("waveband", sa.Text, 'xpath:coverage/waveband',
         "A hash-separated list of regions of the electro-magnetic spectrum that the resource's "
         'spectral coverage overlaps with.'),
    _col("rights", sa.Text, 'xpath:/rights',
         'A statement of usage conditions (license, attribution, embargo, etc).'),
    _col("rights_uri", sa.Text, 'xpath:/rights/@rightsURI',
         'A URI identifying a license the data is made available under.'),
    # pyvo.registry's keyword search is 1 = ivo_hasword(res_description | res_title, word),
    # which the translator writes as this full-text match (vo_service.adql.functions)
    *(sa.Index(f"ix_resource_{column}_words", sa.text(words_sql(column)),
               postgresql_using="gin") for column in ("res_description", "res_title")),
)

res_role = _rr_table(
    "res_role", 1, None,
    'Entities (persons or organizations) operating on resources: creators, contacts, publishers, '
    'contributors.',
    _child_ivoid(index=True),
    _col("role_name", sa.Text, None,
         'The real-world name or title of a person or organization.'),
    _col("role_ivoid", sa.Text, None,
         'An IVOA identifier of a person or organization.'),
    _col("street_address", sa.Text, None,
         'A mailing address for a person or organization.'),
    _col("email", sa.Text, None,
         'An email address the entity can be reached at.'),
    _col("telephone", sa.Text, None,
         'A telephone number the entity can be reached at.'),
    _col("logo", sa.Text, None,
         'URL pointing to a graphical logo, which may be used to help identify the entity.'),
    _col("base_role", sa.Text, None,
         'The role played by this entity; this is one of contact, publisher, contributor, or '
         'creator.'),
)

res_subject = _rr_table(
    "res_subject", 2, 'xpath:/content/',
    'Topics, object types, or other descriptive keywords about the resource.',
    _child_ivoid(primary_key=True),
    _col("res_subject", sa.Text, 'xpath:subject',
         'Topics, object types, or other descriptive keywords about the resource.',
         primary_key=True),
)

capability = _rr_table(
    "capability", 3, 'xpath:/capability/',
    'Pieces of behaviour of a resource.',
    _child_ivoid(primary_key=True),
    _col("cap_index", sa.SmallInteger, None,
         'An arbitrary identifier of this capability within the resource.',
         primary_key=True, autoincrement=False),
    _col("cap_type", sa.Text, 'xpath:@xsi:type',
         'The type of capability covered here. If looking for endpoints implementing a certain '
         'standard, you should not use this column but rather match against standard_id.'),
    _col("cap_description", sa.Text, 'xpath:description',
         'A human-readable description of what this capability provides as part of the over-all '
         'service.'),
    _col("standard_id", sa.Text, 'xpath:@standardID',
         'A URI for a standard this capability conforms to.', index=True),
)

res_schema = _rr_table(
    "res_schema", 4, 'xpath:/tableset/schema/',
    'Sets of tables related to resources.',
    _child_ivoid(primary_key=True),
    _col("schema_index", sa.SmallInteger, None,
         'An arbitrary identifier for the res_schema rows belonging to a resource.',
         primary_key=True, autoincrement=False),
    _col("schema_description", sa.Text, 'xpath:description',
         'A free text description of the tableset explaining in general how all of the tables are '
         'related.'),
    _col("schema_name", sa.Text, 'xpath:name',
         'A name for the set of tables.'),
    _col("schema_title", sa.Text, 'xpath:title',
         'A descriptive, human-interpretable name for the table set.'),
    _col("schema_utype", sa.Text, 'xpath:utype',
         'An identifier for a concept in a data model that the data in this schema as a whole '
         'represent.'),
)

res_table = _rr_table(
    "res_table", 5, 'xpath:/(tableset/schema/|)table/',
    '(Relational) tables that are part of schemata or resources.',
    _child_ivoid(primary_key=True),
    _col("schema_index", sa.SmallInteger, None,
         'Index of the schema this table belongs to, if it belongs to a schema (otherwise NULL).'),
    _col("table_description", sa.Text, 'xpath:description',
         "A free-text description of the table's contents."),
    _col("table_name", sa.Text, 'xpath:name',
         'The fully qualified name of the table. As per VODataService, this includes all catalog '
         'or schema prefixes needed to distinguish it in a query, and it comes with SQL '
         'delimiters where necessary.'),
    _col("table_index", sa.SmallInteger, None,
         'An arbitrary identifier for the tables belonging to a resource.',
         primary_key=True, autoincrement=False),
    _col("table_title", sa.Text, 'xpath:title',
         'A descriptive, human-interpretable name for the table.'),
    _col("table_type", sa.Text, 'xpath:@type',
         'A name for the role this table plays. Recognized values include "output", indicating '
         'this table is output from a query; "base_table", indicating a table whose records '
         'represent the main subjects of its schema; and "view", indicating that the table '
         'represents a useful combination or subset of other tables. Other values are allowed.'),
    _col("table_utype", sa.Text, 'xpath:utype',
         'An identifier for a concept in a data model that the data in this table as a whole '
         'represent.'),
)

table_column = _rr_table(
    "table_column", 6, 'xpath:/(tableset/schema/|)/table/column/',
    "Metadata on columns of a resource's tables.",
    _child_ivoid(index=True),
    _col("table_index", sa.SmallInteger, None,
         'Index of the table this column belongs to.', nullable=False),
    _col("name", sa.Text, 'xpath:name',
         'The name of the column.', index=True),
    _col("ucd", sa.Text, 'xpath:ucd',
         'A unified content descriptor that describes the scientific content of the column.',
         index=True),
    _col("unit", sa.Text, 'xpath:unit',
         'The unit associated with all values in the column.'),
    _col("utype", sa.Text, 'xpath:utype',
         'An identifier for a role in a data model that the data in this column represents.',
         index=True),
    _col("std", sa.SmallInteger, 'xpath:@std',
         'If 1, the meaning and use of this column is reserved and defined by a standard model. '
         'If 0, it represents a database-specific column that effectively extends beyond the '
         'standard.'),
    _col("datatype", sa.Text, 'xpath:dataType',
         'The type of the data contained in the column.'),
    _col("extended_schema", sa.Text, 'xpath:dataType/@extendedSchema',
         'An identifier for the schema that the value given by the extended attribute is drawn '
         'from.'),
    _col("extended_type", sa.Text, 'xpath:dataType/@extendedType',
         'A custom type for the values this column contains.'),
    _col("arraysize", sa.Text, 'xpath:dataType/@arraysize',
         'The shape of the array that constitutes the value, e.g., 4, *, 4*, 5x4, or 5x*, as '
         'specified by VOTable.'),
    _col("delim", sa.Text, 'xpath:dataType/@delim',
         'The string that is used to delimit elements of an array value when arraysize is not '
         "'1'."),
    _col("type_system", sa.Text, 'xpath:dataType/@xsi:type',
         'The type system used, as a QName with a canonical prefix; this will usually be one of '
         'vs:simpledatatype, vs:votabletype, and vs:taptype.'),
    _col("flag", sa.Text, 'xpath:flag',
         'Hash-separated keywords representing traits of the column. Recognized values include '
         '"indexed", "primary", and "nullable".'),
    _col("column_description", sa.Text, 'xpath:description',
         "A free-text description of the column's contents."),
)

interface = _rr_table(
    "interface", 7, 'xpath:/capability/interface/',
    'Information on access modes of a capability.',
    _child_ivoid(primary_key=True),
    _col("cap_index", sa.SmallInteger, None,
         'The index of the parent capability.'),
    _col("intf_index", sa.SmallInteger, None,
         'An arbitrary identifier for the interfaces of a resource.',
         primary_key=True, autoincrement=False),
    _col("intf_type", sa.Text, 'xpath:@xsi:type',
         'The type of the interface (vr:webbrowser, vs:paramhttp, etc).', index=True),
    _col("intf_role", sa.Text, 'xpath:@role',
         'An identifier for the role the interface plays in the particular capability. If the '
         'value is equal to "std" or begins with "std:", then the interface refers to a standard '
         "interface defined by the standard referred to by the capability's standardID attribute."),
    _col("std_version", sa.Text, 'xpath:@version',
         'The version of a standard interface specification that this interface complies with. '
         'When the interface is provided in the context of a Capability element, then the '
         "standard being referred to is the one identified by the Capability's standardID "
         'element.'),
    _col("query_type", sa.Text, 'xpath:queryType',
         'Hash-joined list of expected HTTP method (get or post) supported by the service.'),
    _col("result_type", sa.Text, 'xpath:resultType',
         'The MIME type of a document returned in the HTTP response.'),
    _col("wsdl_url", sa.Text, 'xpath:wsdlURL',
         'The location of the WSDL that describes this Web Service. If NULL, the location can be '
         "assumed to be the accessURL with '?wsdl' appended."),
    _col("url_use", sa.Text, 'xpath:accessURL/@use',
         "A flag indicating whether this should be interpreted as a base URL ('base'), a full URL "
         "('full'), or a URL to a directory that will produce a listing of files ('dir')."),
    _col("access_url", sa.Text, 'xpath:accessURL',
         'The URL at which the interface is found.'),
    _col("mirror_url", sa.Text, 'xpath:mirrorURL',
         'Secondary access URLs of this interface, separated by hash characters.'),
    _col("authenticated_only", sa.SmallInteger, None,
         'A flag for whether an interface is available for anonymous use (=0) or only '
         'authenticated clients are served (=1).'),
)

intf_param = _rr_table(
    "intf_param", 8, 'xpath:/capability/interface/param/',
    'Input parameters for services.',
    _child_ivoid(index=True),
    _col("intf_index", sa.SmallInteger, None,
         'The index of the interface this parameter belongs to.', nullable=False),
    _col("name", sa.Text, 'xpath:name',
         'The name of the parameter.'),
    _col("ucd", sa.Text, 'xpath:ucd',
         'A unified content descriptor that describes the scientific content of the parameter.'),
    _col("unit", sa.Text, 'xpath:unit',
         'The unit associated with all values in the parameter.'),
    _col("utype", sa.Text, 'xpath:utype',
         'An identifier for a role in a data model that the data in this parameter represents.'),
    _col("std", sa.SmallInteger, 'xpath:@std',
         'If 1, the meaning and use of this parameter is reserved and defined by a standard '
         'model. If 0, it represents a database-specific parameter that effectively extends '
         'beyond the standard.'),
    _col("datatype", sa.Text, 'xpath:dataType',
         'The type of the data contained in the parameter.'),
    _col("extended_schema", sa.Text, 'xpath:dataType/@extendedSchema',
         'An identifier for the schema that the value given by the extended attribute is drawn '
         'from.'),
    _col("extended_type", sa.Text, 'xpath:dataType/@extendedType',
         'A custom type for the values this parameter contains.'),
    _col("arraysize", sa.Text, 'xpath:dataType/@arraysize',
         'The shape of the array that constitutes the value, e.g., 4, *, 4*, 5x4, or 5x*, as '
         'specified by VOTable.'),
    _col("delim", sa.Text, 'xpath:dataType/@delim',
         'The string that is used to delimit elements of an array value when arraysize is not '
         "'1'."),
    _col("param_use", sa.Text, 'xpath:@use',
         'An indication of whether this parameter is required to be provided for the application '
         'or service to work properly (one of required, optional, ignored, or NULL).'),
    _col("param_description", sa.Text, 'xpath:description',
         "A free-text description of the parameter's contents."),
)

relationship = _rr_table(
    "relationship", 9, 'xpath:/content/relationship/',
    'Relationships between resources (like mirroring, derivation, serving a data collection).',
    _child_ivoid(index=True),
    _col("relationship_type", sa.Text, 'xpath:relationshipType',
         'The type of the relationship; these terms are drawn from a controlled vocabulary and '
         'are DataCite-compatible.'),
    _col("related_id", sa.Text, 'xpath:relatedResource/@ivo-id',
         'The IVOA identifier for the resource referred to.', index=True),
    _col("related_name", sa.Text, 'xpath:relatedResource',
         'The name of resource that this resource is related to.'),
)

validation = _rr_table(
    "validation", 10, 'xpath:/(capability/|)validationLevel',
    'Validation levels for resources and capabilities.',
    _child_ivoid(index=True),
    _col("validated_by", sa.Text, 'xpath:validationLevel/@validatedBy',
         'The IVOA ID of the registry or organisation that assigned the validation level.'),
    _col("val_level", sa.SmallInteger, 'xpath:validationLevel',
         'A numeric grade describing the quality of the resource description, when applicable, to '
         'be used to indicate the confidence an end-user can put in the resource as part of a VO '
         'application or research study.'),
    _col("cap_index", sa.SmallInteger, None,
         'If non-NULL, the validation only refers to the capability referenced here.'),
)

res_date = _rr_table(
    "res_date", 11, 'xpath:/curation/',
    'A date associated with an event in the life cycle of the resource.',
    _child_ivoid(index=True),
    _col("date_value", _TIMESTAMP, 'xpath:date',
         'A date associated with an event in the life cycle of the resource.'),
    _col("value_role", sa.Text, 'xpath:date/@role',
         'A string indicating what the date refers to, e.g., created, availability, updated. This '
         'value is generally drawn from a controlled vocabulary.'),
)

res_detail = _rr_table(
    "res_detail", 12, None,
    'XPath-value pairs for members of resource or capability and their derivations that are less '
    'used and/or from VOResource extensions.',
    _child_ivoid(index=True),
    _col("cap_index", sa.SmallInteger, None,
         'The index of the parent capability; if NULL the xpath-value pair describes a member of '
         'the entire resource.'),
    _col("detail_xpath", sa.Text, None,
         'The xpath of the data item.', index=True),
    _col("detail_value", sa.Text, None,
         '(Atomic) value of the member.'),
)

alt_identifier = _rr_table(
    "alt_identifier", 13, 'xpath:/altIdentifier',
    'An alternate identifier associated with this record.',
    _child_ivoid(index=True),
    _col("alt_identifier", sa.Text, None,
         'An identifier for the resource or an entity related to the resource in URI form.'),
)

# rr.interface rows are looked up by their capability (pyvo joins them NATURALly).
sa.Index("ix_interface_ivoid_cap_index", interface.c.ivoid, interface.c.cap_index)

RR_TABLES: tuple[sa.Table, ...] = (
    resource, res_role, res_subject, capability, res_schema, res_table, table_column,
    interface, intf_param, relationship, validation, res_date, res_detail, alt_identifier)
"""The fourteen tables, parents before children (insert order; delete in reverse)."""
