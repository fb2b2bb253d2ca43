"""Alembic environment: runs against the connection that ``schema.migrate`` passes in."""

from alembic import context

from schema.migrate import include_object
from schema.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    include_schemas=True,
    include_object=include_object,
    version_table_schema="latentvo_ops",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
