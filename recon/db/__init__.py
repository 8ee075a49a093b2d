"""Storage: typed models, engine and tenant-scoped sessions, migration gate, backups."""
