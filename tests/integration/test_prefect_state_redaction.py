"""A registered secret in an exception never reaches Prefect's stored run states.

Prefect keeps a failed flow or task run's state message ("RuntimeError: ... key=...") and, with
result persistence, the pickled exception; both are read back through the Prefect API here.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import Flow, Task, flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

import flows
from recon.errors import ConfigError
from recon.redaction import MASK, redact_exceptions, register_secret


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect API for this module; yields its URL."""
    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())


@task(name="leaky-task", persist_result=True)
@redact_exceptions
def leaky_task(secret: str) -> None:
    raise ConfigError(f"provider refused key={secret}")


@flow(name="leaky-failing-flow", persist_result=True)
@redact_exceptions
def leaky_failing_flow(secret: str, in_task: bool) -> None:
    if in_task:
        leaky_task(secret)
    raise RuntimeError(f"call failed with key={secret}")


def _stored_states(flow_run_id: uuid.UUID) -> tuple[State[Any], list[State[Any]]]:
    async def read() -> tuple[State[Any], list[State[Any]]]:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
            task_runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        assert flow_run.state is not None
        return flow_run.state, [t.state for t in task_runs if t.state is not None]

    return asyncio.run(read())


@pytest.mark.parametrize("in_task", [False, True])
def test_failed_states_are_stored_without_the_secret(prefect_api: str, in_task: bool) -> None:
    secret = f"CANARY-{uuid.uuid4()}"
    register_secret(secret)
    expected = ConfigError if in_task else RuntimeError
    with pytest.raises(expected) as raised:
        leaky_failing_flow(secret, in_task)
    assert type(raised.value) is expected  # the caller sees the type it raised (exit codes)
    assert secret not in str(raised.value) and f"key={MASK}" in str(raised.value)

    state = leaky_failing_flow(secret, in_task, return_state=True)  # type: ignore[call-overload]
    flow_run_id = state.state_details.flow_run_id
    stored_flow, stored_tasks = _stored_states(flow_run_id)
    assert stored_flow.is_failed()
    assert f"key={MASK}" in (stored_flow.message or "")
    assert secret not in (stored_flow.message or "")
    assert expected.__name__ in (stored_flow.message or "")
    # the persisted result (the pickled exception) holds the masked message too
    stored_exception = stored_flow.result(raise_on_failure=False)
    if asyncio.iscoroutine(stored_exception):
        stored_exception = asyncio.run(stored_exception)
    assert type(stored_exception) is expected
    assert secret not in str(stored_exception) and f"key={MASK}" in str(stored_exception)
    if in_task:
        assert len(stored_tasks) == 1 and stored_tasks[0].is_failed()
        message = stored_tasks[0].message or ""
        assert "ConfigError" in message and f"key={MASK}" in message and secret not in message
        task_exception = stored_tasks[0].result(raise_on_failure=False)
        if asyncio.iscoroutine(task_exception):
            task_exception = asyncio.run(task_exception)
        assert type(task_exception) is ConfigError and secret not in str(task_exception)


def _project_runnables() -> list[Flow[Any, Any] | Task[Any, Any]]:
    modules = [
        importlib.import_module(f"flows.{m.name}") for m in pkgutil.iter_modules(flows.__path__)
    ]
    modules.append(importlib.import_module("tasks.prefect_tasks"))
    found: dict[int, Flow[Any, Any] | Task[Any, Any]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, (Flow, Task)) and value.fn.__module__ == module.__name__:
                found[id(value)] = value
    return list(found.values())


def test_every_flow_and_task_of_the_project_masks_its_exceptions() -> None:
    runnables = _project_runnables()
    names = sorted(r.name for r in runnables)
    assert {"daily", "reconcile", "backfill", "on-provider-event"} <= set(names)
    unmasked = [r.name for r in runnables if not getattr(r.fn, "_recon_redacts_exceptions", False)]
    assert unmasked == []
    # Prefect resolves a flow's string annotations in the globals of the function it holds
    assert all(r.fn.__globals__ is r.fn.__wrapped__.__globals__ for r in runnables)
