"""Alembic migrations of the library schema (see env.py and alembic.ini)."""
