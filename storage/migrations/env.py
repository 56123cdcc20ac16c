"""Alembic environment: migrates the connection `storage.db` hands over, or builds one.

`storage.db.upgrade_database` passes a live (sync-facing) connection in
`config.attributes["connection"]`; the `alembic` command line, run by hand with
`-x url=sqlite:///path.db`, gets a plain sync engine instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    context.configure(
        url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        _configure(conn)
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
