"""The service layer for people's decisions: the one place the CLI and the UI act through.

Every write is one transaction that checks the acting user's role and tenant grant here (never
only at the edge), works inside a tenant-scoped session, appends an audit entry naming the user,
and refuses a stale write with `ConflictError`.
"""
