"""PostgreSQL roles of tenants' databases, managed through the database container itself."""
