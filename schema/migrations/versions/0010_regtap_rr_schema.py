"""the RegTAP 1.1 rr schema over the publishing registry's records

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

The fourteen tables of the IVOA Registry Relational Schema (``rr.resource``,
``rr.capability``, ``rr.interface``...), declared in ``schema/regtap.py`` and filled
from ``latentvo_ops.registry_records`` by ``vo_service.registry.regtap``, so that
pyvo.registry and TOPCAT find this site's resources through its own TAP service.
"""

import sqlalchemy as sa
from alembic import op

from schema.regtap import words_sql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS rr")
    op.create_table('resource',
    sa.Column('ivoid', sa.Text(), nullable=False,
        comment='Unambiguous reference to the resource conforming to the IVOA standard for '
                'identifiers.'),
    sa.Column('res_type', sa.Text(), nullable=False,
        comment='Resource type (something like vg:authority, vs:catalogservice, etc).'),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False,
        comment='The UTC date and time this resource metadata description was created.'),
    sa.Column('short_name', sa.Text(), nullable=True,
        comment='A short name or abbreviation given to something, for presentation in '
                'space-constrained fields (up to 16 characters).'),
    sa.Column('res_title', sa.Text(), nullable=False,
        comment='The full name given to the resource.'),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False,
        comment='The UTC date this resource metadata description was last updated.'),
    sa.Column('content_level', sa.Text(), nullable=True,
        comment='A hash-separated list of content levels specifying the intended audience.'),
    sa.Column('res_description', sa.Text(), nullable=True,
        comment='An account of the nature of the resource.'),
    sa.Column('reference_url', sa.Text(), nullable=True,
        comment='URL pointing to a human-readable document describing this resource.'),
    sa.Column('creator_seq', sa.Text(), nullable=True,
        comment='The creator(s) of the resource in the order given by the resource record author,'
                ' separated by semicolons.'),
    sa.Column('content_type', sa.Text(), nullable=True,
        comment='A hash-separated list of natures or genres of the content of the resource.'),
    sa.Column('source_format', sa.Text(), nullable=True,
        comment='The format of source_value. This, in particular, can be "bibcode".'),
    sa.Column('source_value', sa.Text(), nullable=True,
        comment='A bibliographic reference from which the present resource is derived or '
                'extracted.'),
    sa.Column('res_version', sa.Text(), nullable=True,
        comment='Label associated with creation or availability of a version of a resource.'),
    sa.Column('region_of_regard', sa.REAL(), nullable=True,
        comment='A single numeric value representing the angle, given in decimal degrees, by '
                'which a positional query against this resource should be "blurred" in order to '
                'get an appropriate match.'),
    sa.Column('waveband', sa.Text(), nullable=True,
        comment='A hash-separated list of regions of the electro-magnetic spectrum that the '
                "resource's spectral coverage overlaps with."),
    sa.Column('rights', sa.Text(), nullable=True,
        comment='A statement of usage conditions (license, attribution, embargo, etc).'),
    sa.Column('rights_uri', sa.Text(), nullable=True,
        comment='A URI identifying a license the data is made available under.'),
    sa.PrimaryKeyConstraint('ivoid', name=op.f('pk_resource')),
    schema='rr',
        comment='The resources (like services, data collections, organizations) present in this '
                'registry.',
    )
    for column in ('res_description', 'res_title'):  # ivo_hasword's full-text indexes
        op.create_index(f'ix_resource_{column}_words', 'resource', [sa.text(words_sql(column))],
                        unique=False, schema='rr', postgresql_using='gin')
    op.create_table('alt_identifier',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('alt_identifier', sa.Text(), nullable=True,
        comment='An identifier for the resource or an entity related to the resource in URI form.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_alt_identifier_ivoid_resource')),
    schema='rr',
    comment='An alternate identifier associated with this record.',
    )
    op.create_index(op.f('ix_alt_identifier_ivoid'), 'alt_identifier', ['ivoid'],
                    unique=False, schema='rr')
    op.create_table('capability',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('cap_index', sa.SmallInteger(), autoincrement=False, nullable=False,
        comment='An arbitrary identifier of this capability within the resource.'),
    sa.Column('cap_type', sa.Text(), nullable=True,
        comment='The type of capability covered here. If looking for endpoints implementing a '
                'certain standard, you should not use this column but rather match against '
                'standard_id.'),
    sa.Column('cap_description', sa.Text(), nullable=True,
        comment='A human-readable description of what this capability provides as part of the '
                'over-all service.'),
    sa.Column('standard_id', sa.Text(), nullable=True,
        comment='A URI for a standard this capability conforms to.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_capability_ivoid_resource')),
    sa.PrimaryKeyConstraint('ivoid', 'cap_index', name=op.f('pk_capability')),
    schema='rr',
    comment='Pieces of behaviour of a resource.',
    )
    op.create_index(op.f('ix_capability_standard_id'), 'capability', ['standard_id'],
                    unique=False, schema='rr')
    op.create_table('interface',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('cap_index', sa.SmallInteger(), nullable=True,
        comment='The index of the parent capability.'),
    sa.Column('intf_index', sa.SmallInteger(), autoincrement=False, nullable=False,
        comment='An arbitrary identifier for the interfaces of a resource.'),
    sa.Column('intf_type', sa.Text(), nullable=True,
        comment='The type of the interface (vr:webbrowser, vs:paramhttp, etc).'),
    sa.Column('intf_role', sa.Text(), nullable=True,
        comment='An identifier for the role the interface plays in the particular capability. If '
                'the value is equal to "std" or begins with "std:", then the interface refers to '
                "a standard interface defined by the standard referred to by the capability's "
                'standardID attribute.'),
    sa.Column('std_version', sa.Text(), nullable=True,
        comment='The version of a standard interface specification that this interface complies '
                'with. When the interface is provided in the context of a Capability element, '
                "then the standard being referred to is the one identified by the Capability's "
                'standardID element.'),
    sa.Column('query_type', sa.Text(), nullable=True,
        comment='Hash-joined list of expected HTTP method (get or post) supported by the service.'),
    sa.Column('result_type', sa.Text(), nullable=True,
        comment='The MIME type of a document returned in the HTTP response.'),
    sa.Column('wsdl_url', sa.Text(), nullable=True,
        comment='The location of the WSDL that describes this Web Service. If NULL, the location '
                "can be assumed to be the accessURL with '?wsdl' appended."),
    sa.Column('url_use', sa.Text(), nullable=True,
        comment="A flag indicating whether this should be interpreted as a base URL ('base'), a "
                "full URL ('full'), or a URL to a directory that will produce a listing of files "
                "('dir')."),
    sa.Column('access_url', sa.Text(), nullable=True,
        comment='The URL at which the interface is found.'),
    sa.Column('mirror_url', sa.Text(), nullable=True,
        comment='Secondary access URLs of this interface, separated by hash characters.'),
    sa.Column('authenticated_only', sa.SmallInteger(), nullable=True,
        comment='A flag for whether an interface is available for anonymous use (=0) or only '
                'authenticated clients are served (=1).'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_interface_ivoid_resource')),
    sa.PrimaryKeyConstraint('ivoid', 'intf_index', name=op.f('pk_interface')),
    schema='rr',
    comment='Information on access modes of a capability.',
    )
    op.create_index(op.f('ix_interface_intf_type'), 'interface', ['intf_type'],
                    unique=False, schema='rr')
    op.create_index('ix_interface_ivoid_cap_index', 'interface', ['ivoid', 'cap_index'],
                    unique=False, schema='rr')
    op.create_table('intf_param',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('intf_index', sa.SmallInteger(), nullable=False,
        comment='The index of the interface this parameter belongs to.'),
    sa.Column('name', sa.Text(), nullable=True, comment='The name of the parameter.'),
    sa.Column('ucd', sa.Text(), nullable=True,
        comment='A unified content descriptor that describes the scientific content of the '
                'parameter.'),
    sa.Column('unit', sa.Text(), nullable=True,
        comment='The unit associated with all values in the parameter.'),
    sa.Column('utype', sa.Text(), nullable=True,
        comment='An identifier for a role in a data model that the data in this parameter '
                'represents.'),
    sa.Column('std', sa.SmallInteger(), nullable=True,
        comment='If 1, the meaning and use of this parameter is reserved and defined by a '
                'standard model. If 0, it represents a database-specific parameter that '
                'effectively extends beyond the standard.'),
    sa.Column('datatype', sa.Text(), nullable=True,
        comment='The type of the data contained in the parameter.'),
    sa.Column('extended_schema', sa.Text(), nullable=True,
        comment='An identifier for the schema that the value given by the extended attribute is '
                'drawn from.'),
    sa.Column('extended_type', sa.Text(), nullable=True,
        comment='A custom type for the values this parameter contains.'),
    sa.Column('arraysize', sa.Text(), nullable=True,
        comment='The shape of the array that constitutes the value, e.g., 4, *, 4*, 5x4, or 5x*, '
                'as specified by VOTable.'),
    sa.Column('delim', sa.Text(), nullable=True,
        comment='The string that is used to delimit elements of an array value when arraysize is '
                "not '1'."),
    sa.Column('param_use', sa.Text(), nullable=True,
        comment='An indication of whether this parameter is required to be provided for the '
                'application or service to work properly (one of required, optional, ignored, or '
                'NULL).'),
    sa.Column('param_description', sa.Text(), nullable=True,
        comment="A free-text description of the parameter's contents."),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_intf_param_ivoid_resource')),
    schema='rr',
    comment='Input parameters for services.',
    )
    op.create_index(op.f('ix_intf_param_ivoid'), 'intf_param', ['ivoid'], unique=False, schema='rr')
    op.create_table('relationship',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('relationship_type', sa.Text(), nullable=True,
        comment='The type of the relationship; these terms are drawn from a controlled vocabulary'
                ' and are DataCite-compatible.'),
    sa.Column('related_id', sa.Text(), nullable=True,
        comment='The IVOA identifier for the resource referred to.'),
    sa.Column('related_name', sa.Text(), nullable=True,
        comment='The name of resource that this resource is related to.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_relationship_ivoid_resource')),
    schema='rr',
        comment='Relationships between resources (like mirroring, derivation, serving a data '
                'collection).',
    )
    op.create_index(op.f('ix_relationship_ivoid'), 'relationship', ['ivoid'],
                    unique=False, schema='rr')
    op.create_index(op.f('ix_relationship_related_id'), 'relationship', ['related_id'],
                    unique=False, schema='rr')
    op.create_table('res_date',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('date_value', sa.DateTime(timezone=True), nullable=True,
        comment='A date associated with an event in the life cycle of the resource.'),
    sa.Column('value_role', sa.Text(), nullable=True,
        comment='A string indicating what the date refers to, e.g., created, availability, '
                'updated. This value is generally drawn from a controlled vocabulary.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_date_ivoid_resource')),
    schema='rr',
    comment='A date associated with an event in the life cycle of the resource.',
    )
    op.create_index(op.f('ix_res_date_ivoid'), 'res_date', ['ivoid'], unique=False, schema='rr')
    op.create_table('res_detail',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('cap_index', sa.SmallInteger(), nullable=True,
        comment='The index of the parent capability; if NULL the xpath-value pair describes a '
                'member of the entire resource.'),
    sa.Column('detail_xpath', sa.Text(), nullable=True, comment='The xpath of the data item.'),
    sa.Column('detail_value', sa.Text(), nullable=True, comment='(Atomic) value of the member.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_detail_ivoid_resource')),
    schema='rr',
        comment='XPath-value pairs for members of resource or capability and their derivations '
                'that are less used and/or from VOResource extensions.',
    )
    op.create_index(op.f('ix_res_detail_detail_xpath'), 'res_detail', ['detail_xpath'],
                    unique=False, schema='rr')
    op.create_index(op.f('ix_res_detail_ivoid'), 'res_detail', ['ivoid'], unique=False, schema='rr')
    op.create_table('res_role',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('role_name', sa.Text(), nullable=True,
        comment='The real-world name or title of a person or organization.'),
    sa.Column('role_ivoid', sa.Text(), nullable=True,
        comment='An IVOA identifier of a person or organization.'),
    sa.Column('street_address', sa.Text(), nullable=True,
        comment='A mailing address for a person or organization.'),
    sa.Column('email', sa.Text(), nullable=True,
        comment='An email address the entity can be reached at.'),
    sa.Column('telephone', sa.Text(), nullable=True,
        comment='A telephone number the entity can be reached at.'),
    sa.Column('logo', sa.Text(), nullable=True,
        comment='URL pointing to a graphical logo, which may be used to help identify the entity.'),
    sa.Column('base_role', sa.Text(), nullable=True,
        comment='The role played by this entity; this is one of contact, publisher, contributor, '
                'or creator.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_role_ivoid_resource')),
    schema='rr',
        comment='Entities (persons or organizations) operating on resources: creators, contacts, '
                'publishers, contributors.',
    )
    op.create_index(op.f('ix_res_role_ivoid'), 'res_role', ['ivoid'], unique=False, schema='rr')
    op.create_table('res_schema',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('schema_index', sa.SmallInteger(), autoincrement=False, nullable=False,
        comment='An arbitrary identifier for the res_schema rows belonging to a resource.'),
    sa.Column('schema_description', sa.Text(), nullable=True,
        comment='A free text description of the tableset explaining in general how all of the '
                'tables are related.'),
    sa.Column('schema_name', sa.Text(), nullable=True, comment='A name for the set of tables.'),
    sa.Column('schema_title', sa.Text(), nullable=True,
        comment='A descriptive, human-interpretable name for the table set.'),
    sa.Column('schema_utype', sa.Text(), nullable=True,
        comment='An identifier for a concept in a data model that the data in this schema as a '
                'whole represent.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_schema_ivoid_resource')),
    sa.PrimaryKeyConstraint('ivoid', 'schema_index', name=op.f('pk_res_schema')),
    schema='rr',
    comment='Sets of tables related to resources.',
    )
    op.create_table('res_subject',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('res_subject', sa.Text(), nullable=False,
        comment='Topics, object types, or other descriptive keywords about the resource.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_subject_ivoid_resource')),
    sa.PrimaryKeyConstraint('ivoid', 'res_subject', name=op.f('pk_res_subject')),
    schema='rr',
    comment='Topics, object types, or other descriptive keywords about the resource.',
    )
    op.create_table('res_table',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('schema_index', sa.SmallInteger(), nullable=True,
        comment='Index of the schema this table belongs to, if it belongs to a schema (otherwise '
                'NULL).'),
    sa.Column('table_description', sa.Text(), nullable=True,
        comment="A free-text description of the table's contents."),
    sa.Column('table_name', sa.Text(), nullable=True,
        comment='The fully qualified name of the table. As per VODataService, this includes all '
                'catalog or schema prefixes needed to distinguish it in a query, and it comes '
                'with SQL delimiters where necessary.'),
    sa.Column('table_index', sa.SmallInteger(), autoincrement=False, nullable=False,
        comment='An arbitrary identifier for the tables belonging to a resource.'),
    sa.Column('table_title', sa.Text(), nullable=True,
        comment='A descriptive, human-interpretable name for the table.'),
    sa.Column('table_type', sa.Text(), nullable=True,
        comment='A name for the role this table plays. Recognized values include "output", '
                'indicating this table is output from a query; "base_table", indicating a table '
                'whose records represent the main subjects of its schema; and "view", indicating '
                'that the table represents a useful combination or subset of other tables. Other '
                'values are allowed.'),
    sa.Column('table_utype', sa.Text(), nullable=True,
        comment='An identifier for a concept in a data model that the data in this table as a '
                'whole represent.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_res_table_ivoid_resource')),
    sa.PrimaryKeyConstraint('ivoid', 'table_index', name=op.f('pk_res_table')),
    schema='rr',
    comment='(Relational) tables that are part of schemata or resources.',
    )
    op.create_table('table_column',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('table_index', sa.SmallInteger(), nullable=False,
        comment='Index of the table this column belongs to.'),
    sa.Column('name', sa.Text(), nullable=True, comment='The name of the column.'),
    sa.Column('ucd', sa.Text(), nullable=True,
        comment='A unified content descriptor that describes the scientific content of the '
                'column.'),
    sa.Column('unit', sa.Text(), nullable=True,
        comment='The unit associated with all values in the column.'),
    sa.Column('utype', sa.Text(), nullable=True,
        comment='An identifier for a role in a data model that the data in this column '
                'represents.'),
    sa.Column('std', sa.SmallInteger(), nullable=True,
        comment='If 1, the meaning and use of this column is reserved and defined by a standard '
                'model. If 0, it represents a database-specific column that effectively extends '
                'beyond the standard.'),
    sa.Column('datatype', sa.Text(), nullable=True,
        comment='The type of the data contained in the column.'),
    sa.Column('extended_schema', sa.Text(), nullable=True,
        comment='An identifier for the schema that the value given by the extended attribute is '
                'drawn from.'),
    sa.Column('extended_type', sa.Text(), nullable=True,
        comment='A custom type for the values this column contains.'),
    sa.Column('arraysize', sa.Text(), nullable=True,
        comment='The shape of the array that constitutes the value, e.g., 4, *, 4*, 5x4, or 5x*, '
                'as specified by VOTable.'),
    sa.Column('delim', sa.Text(), nullable=True,
        comment='The string that is used to delimit elements of an array value when arraysize is '
                "not '1'."),
    sa.Column('type_system', sa.Text(), nullable=True,
        comment='The type system used, as a QName with a canonical prefix; this will usually be '
                'one of vs:simpledatatype, vs:votabletype, and vs:taptype.'),
    sa.Column('flag', sa.Text(), nullable=True,
        comment='Hash-separated keywords representing traits of the column. Recognized values '
                'include "indexed", "primary", and "nullable".'),
    sa.Column('column_description', sa.Text(), nullable=True,
        comment="A free-text description of the column's contents."),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_table_column_ivoid_resource')),
    schema='rr',
    comment="Metadata on columns of a resource's tables.",
    )
    op.create_index(op.f('ix_table_column_ivoid'), 'table_column', ['ivoid'],
                    unique=False, schema='rr')
    op.create_index(op.f('ix_table_column_name'), 'table_column', ['name'],
                    unique=False, schema='rr')
    op.create_index(op.f('ix_table_column_ucd'), 'table_column', ['ucd'], unique=False, schema='rr')
    op.create_index(op.f('ix_table_column_utype'), 'table_column', ['utype'],
                    unique=False, schema='rr')
    op.create_table('validation',
    sa.Column('ivoid', sa.Text(), nullable=False, comment='The parent resource.'),
    sa.Column('validated_by', sa.Text(), nullable=True,
        comment='The IVOA ID of the registry or organisation that assigned the validation level.'),
    sa.Column('val_level', sa.SmallInteger(), nullable=True,
        comment='A numeric grade describing the quality of the resource description, when '
                'applicable, to be used to indicate the confidence an end-user can put in the '
                'resource as part of a VO application or research study.'),
    sa.Column('cap_index', sa.SmallInteger(), nullable=True,
        comment='If non-NULL, the validation only refers to the capability referenced here.'),
    sa.ForeignKeyConstraint(['ivoid'], ['rr.resource.ivoid'],
                            name=op.f('fk_validation_ivoid_resource')),
    schema='rr',
    comment='Validation levels for resources and capabilities.',
    )
    op.create_index(op.f('ix_validation_ivoid'), 'validation', ['ivoid'], unique=False, schema='rr')


def downgrade() -> None:
    op.drop_index(op.f('ix_validation_ivoid'), table_name='validation', schema='rr')
    op.drop_table('validation', schema='rr')
    op.drop_index(op.f('ix_table_column_utype'), table_name='table_column', schema='rr')
    op.drop_index(op.f('ix_table_column_ucd'), table_name='table_column', schema='rr')
    op.drop_index(op.f('ix_table_column_name'), table_name='table_column', schema='rr')
    op.drop_index(op.f('ix_table_column_ivoid'), table_name='table_column', schema='rr')
    op.drop_table('table_column', schema='rr')
    op.drop_table('res_table', schema='rr')
    op.drop_table('res_subject', schema='rr')
    op.drop_table('res_schema', schema='rr')
    op.drop_index(op.f('ix_res_role_ivoid'), table_name='res_role', schema='rr')
    op.drop_table('res_role', schema='rr')
    op.drop_index(op.f('ix_res_detail_ivoid'), table_name='res_detail', schema='rr')
    op.drop_index(op.f('ix_res_detail_detail_xpath'), table_name='res_detail', schema='rr')
    op.drop_table('res_detail', schema='rr')
    op.drop_index(op.f('ix_res_date_ivoid'), table_name='res_date', schema='rr')
    op.drop_table('res_date', schema='rr')
    op.drop_index(op.f('ix_relationship_related_id'), table_name='relationship', schema='rr')
    op.drop_index(op.f('ix_relationship_ivoid'), table_name='relationship', schema='rr')
    op.drop_table('relationship', schema='rr')
    op.drop_index(op.f('ix_intf_param_ivoid'), table_name='intf_param', schema='rr')
    op.drop_table('intf_param', schema='rr')
    op.drop_index('ix_interface_ivoid_cap_index', table_name='interface', schema='rr')
    op.drop_index(op.f('ix_interface_intf_type'), table_name='interface', schema='rr')
    op.drop_table('interface', schema='rr')
    op.drop_index(op.f('ix_capability_standard_id'), table_name='capability', schema='rr')
    op.drop_table('capability', schema='rr')
    op.drop_index(op.f('ix_alt_identifier_ivoid'), table_name='alt_identifier', schema='rr')
    op.drop_table('alt_identifier', schema='rr')
    op.drop_table('resource', schema='rr')
    op.execute("DROP SCHEMA IF EXISTS rr")
