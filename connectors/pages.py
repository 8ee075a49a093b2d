"""The raw page a connector hands back before it parses anything.

Pure data, no storage: connectors build `Page`s and `tasks.land` stores them, so importing a
connector never loads SQLAlchemy or the models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """One response page as the provider sent it."""

    endpoint: str
    request_key: str
    status: int
    body: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the body."""
        return hashlib.sha256(self.body).hexdigest()
