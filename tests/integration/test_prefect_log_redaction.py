"""A registered secret never reaches Prefect's stored logs, whoever runs the flow.

The logs are read back from the Prefect API (what its UI shows), not from a terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from recon.logs import configure_logging, remove_handler
from recon.redaction import MASK, register_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect API for this module; yields its URL."""
    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def recon_logs_to_api() -> Iterator[None]:
    """Send `recon.*` records to the API, as `PREFECT_LOGGING_EXTRA_LOGGERS=recon` does.

    The handler is added after the CLI's logging setup, the order that let secrets through.
    """
    terminal = configure_logging("INFO", "human")
    handler = APILogHandler()
    recon_logger = logging.getLogger("recon")
    recon_logger.addHandler(handler)
    yield
    recon_logger.removeHandler(handler)
    logging.getLogger().removeHandler(terminal)
    remove_handler()


def _stored_messages(flow_run_id: uuid.UUID) -> list[str]:
    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
        return [entry.message for entry in logs]

    return asyncio.run(read())


@flow(name="leaky-flow")
def leaky_flow(secret: str) -> None:
    """Logs a secret every way a flow of this project can."""
    get_run_logger().warning("token %s refused", secret)
    get_run_logger().info(f"inline token {secret} refused")
    logging.getLogger("recon.connectors.test").warning("token %s refused", secret)
    try:
        raise RuntimeError(f"call failed with key={secret}")
    except RuntimeError:
        get_run_logger().exception("provider call failed")


def test_secret_is_masked_in_prefects_stored_logs(
    prefect_api: str, recon_logs_to_api: None
) -> None:
    secret = f"CANARY-{uuid.uuid4()}"
    register_secret(secret)
    state = leaky_flow(secret, return_state=True)  # type: ignore[call-overload]
    APILogHandler().flush()  # send what is queued before reading it back
    flow_run_id = state.state_details.flow_run_id
    messages = _stored_messages(flow_run_id)
    stored = "\n".join(messages)
    assert "provider call failed" in stored and "RuntimeError" in stored
    assert any(m.startswith("token ") and "refused" in m for m in messages)
    assert secret not in stored
    # two `token *** refused` lines (flow logger and recon logger), the inline one, the traceback
    assert stored.count(f"token {MASK} refused") == 3
    assert f"key={MASK}" in stored


_WORKER_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import flows.on_event  # what a worker imports: the deployment's entrypoint module
    from prefect import flow, get_run_logger
    from recon.redaction import register_secret

    @flow(name="worker-leaky-flow")
    def worker_flow(secret: str) -> None:
        register_secret(secret)  # as the secrets layer does when it resolves one
        get_run_logger().warning("token %s refused", secret)
        logging.getLogger("recon.connectors.test").warning("token %s refused", secret)

    state = worker_flow(sys.argv[1], return_state=True)
    print(state.state_details.flow_run_id)
    """
)


def test_a_worker_process_without_the_cli_setup_masks_secrets(
    prefect_api: str, tmp_path: Path
) -> None:
    secret = f"CANARY-{uuid.uuid4()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "RECON_"))
    }
    env.update(
        PREFECT_API_URL=prefect_api,
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_EXTRA_LOGGERS="recon",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", _WORKER_SCRIPT, secret],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    flow_run_id = uuid.UUID(result.stdout.strip().splitlines()[-1])
    messages = _stored_messages(flow_run_id)
    stored = "\n".join(messages)
    assert secret not in stored
    assert secret not in result.stderr  # Prefect's own console handler too
    assert stored.count(f"token {MASK} refused") == 2
