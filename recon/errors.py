"""Error types whose message is meant for a person.

A `ReconError` carries one sentence that says what is wrong and what to do. The CLI prints it on
stderr and exits non-zero, without a traceback. Anything else that escapes is a bug.
"""

from __future__ import annotations


class ReconError(Exception):
    """A failure the user can act on; its message is one clear sentence."""

    exit_code: int = 1


class ConfigError(ReconError):
    """Settings or tenant configuration are missing or invalid."""

    exit_code = 2


class SecretUnavailableError(ReconError):
    """A required secret could not be resolved. The message names the secret, never its value."""

    exit_code = 3


class SchemaNotAtHeadError(ReconError):
    """The database schema is not at the migration head."""

    exit_code = 4


class NotFoundError(ReconError):
    """A named thing (tenant, file, revision) does not exist."""

    exit_code = 5


class InputFileError(ReconError):
    """An input file is unreadable or malformed; the message names file, row and column."""

    exit_code = 6


class UnversionedSchemaError(SchemaNotAtHeadError):
    """The database holds this schema's tables but no migration revision."""


class BatchHeldError(ReconError):
    """Too many rows of a batch failed validation; none of it was loaded."""

    exit_code = 11


class PermissionDeniedError(ReconError):
    """The acting user may not do this: unknown or disabled, no grant on the tenant, or a role
    that does not allow it (an auditor's write)."""

    exit_code = 13


class ConflictError(ReconError):
    """Someone else changed the thing first; the message says who, what and when."""

    exit_code = 14


class RuleViolationError(ReconError):
    """A decision would break a rule of the books (over-allocation, another currency, a
    cancelled invoice); the message names the rule."""

    exit_code = 15
