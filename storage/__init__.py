"""Sentibot storage: SQLAlchemy tables, engine/session factory, repositories, migrations."""
