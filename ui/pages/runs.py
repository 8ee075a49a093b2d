"""Runs: recent runs with status, window, duration and counts; failed validations and
quarantined rows; a form to re-run a window (finance and admins)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from recon.errors import ReconError
from recon.review import overview as service
from ui import components, rerun, state

STATUS_ICON = {"completed": "✅", "failed": "❌", "crashed": "💥", "stuck": "⏳", "running": "▶️"}

st.title("Runs")
tenant = state.tenant()

if state.can("work"):
    with st.form("rerun"):
        st.write(
            "Re-run a window (through the Prefect deployment when PREFECT_API_URL is set, here otherwise)"
        )
        first, last = state.default_period(7)
        window = st.date_input("Window", (first, last), key="rerun_window")
        submitted = st.form_submit_button("Start run")
    if submitted and isinstance(window, tuple) and len(window) == 2:
        request = components.call(
            service.request_run, state.engine(), state.acting(), tenant, *window
        )
        if request is not None:
            with st.status(f"running {tenant} {window[0]}..{window[1]}", expanded=True) as progress:
                try:
                    started = rerun.start(tenant, *window)
                except ReconError as exc:
                    progress.update(label="the run did not complete", state="error")
                    st.error(components.plain(exc))
                else:
                    progress.update(
                        label=f"{started.how} run {started.flow_run}: {started.state}",
                        state="complete",
                    )

runs = components.call(service.recent_runs, state.engine(), state.acting(), tenant, limit=30)
if runs is None:
    st.stop()
if not runs:
    components.empty(
        "No run yet: start one above, or with `recon run --tenant` on the command line."
    )
    st.stop()
table = pd.DataFrame(
    [
        {
            "status": f"{STATUS_ICON.get(r.shown_status, '')} {r.shown_status}",
            "window": f"{r.window_from} .. {r.window_to}",
            "started": r.started_at,
            "duration (s)": r.duration_seconds,
            "transactions": r.counts.get("transactions"),
            "auto": r.counts.get("allocations_auto"),
            "review": r.counts.get("allocations_review"),
            "exceptions": r.counts.get("exceptions"),
            "failed validations": len(r.validation_failures),
            "quarantined": len(r.quarantined),
            "id": r.id,
        }
        for r in runs
    ]
)
event = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="single-row", key="runs_table"
)
stuck = [r for r in runs if r.stuck]
if stuck:
    st.warning(
        f"{len(stuck)} run(s) are stuck: marked running, but no process writes for them. The next run "
        "of this tenant closes them as crashed."
    )
chosen = event.selection.rows if event is not None else []
if chosen:
    run = runs[chosen[0]]
    st.subheader(f"Run {run.id}")
    if run.error:
        st.error(components.plain(run.error))
    st.code(json.dumps(run.counts, indent=2, sort_keys=True, default=str), language="json")
    if run.validation_failures:
        st.write("Failed validations")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "dataset": v.dataset,
                        "suite": v.suite,
                        "rows failed": v.rows_failed,
                        "rows evaluated": v.rows_evaluated,
                        "held": v.held,
                        "expectations": ", ".join(v.expectations),
                    }
                    for v in run.validation_failures
                ]
            ),
            hide_index=True,
        )
    if run.quarantined:
        st.write("Quarantined rows")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "provider": q.provider,
                        "dataset": q.dataset,
                        "row": q.row_key,
                        "booked on": q.booked_on,
                        "amount": components.money(q.amount_minor, q.currency),
                        "reasons": "; ".join(q.reasons),
                    }
                    for q in run.quarantined
                ]
            ),
            hide_index=True,
        )
