"""Run by Alembic inside :func:`bridge.journal.schema.create_schema`: the bridge hands over its
connection, already in a transaction and holding the start-up lock."""

from alembic import context

from bridge.journal.tables import metadata

context.configure(connection=context.config.attributes["connection"],
                  target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
