"""Prefect flows: thin, typed, one per file; they order tasks and own no business logic."""
