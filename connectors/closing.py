"""A client that closes its connections when used as a context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """Mixin: `with Client(...) as client:` calls `client.close()` on the way out."""

    def close(self) -> None:
        """Release the client's connections."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
