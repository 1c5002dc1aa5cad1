"""Storage of values, events, commands and energy (SQLAlchemy 2: SQLite by default, PostgreSQL in production)."""
