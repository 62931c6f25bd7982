"""System of record: SQLAlchemy 2 tables, repositories and the unit of work (SQLite or PostgreSQL)."""
