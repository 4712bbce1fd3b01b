"""Alembic environment: photo_sorter.store.schema passes the connection to migrate; the
`alembic` command line (for writing a new revision) uses -x url=sqlite:///path instead."""

from alembic import context
from sqlalchemy import create_engine

from photo_sorter.store.models import Base

connection = context.config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with create_engine(context.get_x_argument(as_dictionary=True)["url"]).connect() as conn:
        run(conn)
