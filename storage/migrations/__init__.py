"""Alembic migrations (configured in code by `storage.db.alembic_config`; no alembic.ini)."""
