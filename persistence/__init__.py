"""Persistence: SQLAlchemy models, units of work, Alembic migrations. Never imports schema/."""
