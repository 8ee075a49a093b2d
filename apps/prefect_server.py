"""Prefect's temporary local API, tied to the life of the command that started it.

The guard itself lives in `flows.prefect_server` (the UI's re-run form starts local runs too, and
`ui` may not import `apps`); this module keeps the name the entry points and benches use, and
`python -m apps.prefect_server` still serves as the guarded server's side.
"""

from __future__ import annotations

import sys

from flows.prefect_server import (
    SHUTDOWN_GRACE_SECONDS,
    STARTUP_TIMEOUT_SECONDS,
    local_prefect_api,
    main,
)

__all__ = ["SHUTDOWN_GRACE_SECONDS", "STARTUP_TIMEOUT_SECONDS", "local_prefect_api", "main"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
