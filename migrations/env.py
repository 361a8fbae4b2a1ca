"""Alembic environment: runs migrations on the app's own engine.

SQLite cannot ALTER most things in place, so batch mode (copy and rename)
is used there; the same revisions then run on SQLite and PostgreSQL.
"""
from alembic import context
from flask import current_app

config = context.config
target_db = current_app.extensions["migrate"].db


def run_migrations_offline() -> None:
    context.configure(
        url=target_db.engine.url.render_as_string(hide_password=False),
        target_metadata=target_db.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection, on: bool) -> None:
    # Batch mode drops and recreates a table; with foreign keys on, dropping
    # `users` would first delete every row and cascade to messages and follows.
    # The pragma is a no-op inside a transaction, so it goes to the driver's
    # connection directly, which runs outside one (autocommit).
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def run_migrations_online() -> None:
    with target_db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"a migration left dangling references: {broken[:5]}")
            connection.commit()
        finally:
            if sqlite:
                connection.rollback()  # the pragma only takes effect outside a transaction
                _sqlite_foreign_keys(connection, on=True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
