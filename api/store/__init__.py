"""The service's store: SQLAlchemy 2 models over SQLite (default) or PostgreSQL, migrated by
alembic. Large rasters stay files (COGs) that rows reference."""
