"""Prefect flows: thin, typed, one per file; they order tasks and own no business logic."""

from recon.redaction import install_log_record_redaction

# A worker imports a deployment's module without the CLI's setup: its logs are masked as well.
install_log_record_redaction()
