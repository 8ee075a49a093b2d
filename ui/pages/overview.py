"""Overview: what a finance lead looks at first, for the chosen tenant and period."""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from recon.review import overview as service
from ui import components, state

st.title("Overview")
tenant = state.tenant()
start, end = state.default_period(90)
period = st.date_input("Period", (start, end), key="overview_period")
if not isinstance(period, tuple) or len(period) != 2:
    st.info("Pick the first and the last day of the period.")
    st.stop()


@st.cache_data(ttl=300, max_entries=64, show_spinner="aggregating")
def _overview(
    _engine: object,
    database: str,
    email: str,
    tenant_id: str,
    first: dt.date,
    last: dt.date,
    version: int,
) -> service.Overview:
    """Cached per database, user, tenant, period and data version (the audit head): never across
    users, nor across two databases whose audit heads happen to be equal."""
    del database, version  # part of the key only
    assert isinstance(_engine, Engine)
    return service.overview(_engine, email, tenant_id, first, last)


engine, me = state.engine(), state.acting()
version = components.call(service.data_version, engine, me, tenant)
database = engine.url.render_as_string(hide_password=True)
view = (
    None
    if version is None
    else components.call(_overview, engine, database, me, tenant, *period, version)
)
if view is None:
    st.stop()

row = st.columns(4)
components.metric_amounts(row[0], "Received", view.received)
components.metric_amounts(row[1], "Allocated automatically", view.allocated_auto)
components.metric_amounts(row[2], "Allocated by people", view.allocated_manual)
row[3].metric(
    "Match rate",
    f"{view.match_rate:.1%}",
    help=f"{view.matched_payments} of {view.payments} payments",
)
row = st.columns(4)
row[0].metric("Open exceptions", view.open_count)
components.metric_amounts(row[1], "Open exceptions' sum", view.open_sum)
row[2].metric(
    "Oldest open", "-" if view.oldest_open_days is None else f"{view.oldest_open_days} days"
)
run = view.last_run
row[3].metric("Last run", "none yet" if run is None else run.shown_status)
if run is not None:
    st.caption(
        f"Last run {run.id[:8]} over {run.window_from} to {run.window_to}, started "
        f"{run.started_at:%Y-%m-%d %H:%M} UTC"
    )

if not view.payments and not view.open_count:
    components.empty(
        "No payments in this period yet: run a reconciliation (Runs page) or widen the period."
    )
    st.stop()

left, right = st.columns(2)
with left:
    st.subheader("Match rate per day")
    days = pd.DataFrame(
        [
            {"day": d.day.isoformat(), "match rate": d.rate, "payments": d.payments}
            for d in view.match_rate_by_day
        ]
    )
    if days.empty:
        components.empty("No customer payments in this period.")
    else:
        st.altair_chart(
            alt.Chart(days)
            .mark_line(point=True)
            .encode(
                x=alt.X("day:T", title="day"),
                y=alt.Y("match rate:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                tooltip=["day:T", alt.Tooltip("match rate:Q", format=".1%"), "payments:Q"],
            ),
            width="stretch",
        )
with right:
    st.subheader("Open exceptions by age and kind")
    ages = pd.DataFrame(
        [{"age": a.age, "kind": a.kind, "count": a.count} for a in view.open_by_age_kind]
    )
    if ages.empty:
        components.empty("No open exceptions: nothing waits for a person.")
    else:
        order = [label for label, _ in service.AGE_BUCKETS] + [service.OLDEST_BUCKET]
        st.altair_chart(
            alt.Chart(ages)
            .mark_bar()
            .encode(
                x=alt.X("age:N", sort=order),
                y="count:Q",
                color="kind:N",
                tooltip=["age", "kind", "count"],
            ),
            width="stretch",
        )

st.subheader("Money received per source")
sources = pd.DataFrame(
    [
        {
            "source": s.source,
            "currency": s.currency,
            "received": components.money(s.minor, s.currency),
            "minor": s.minor,
        }
        for s in view.received_by_source
    ]
)
if sources.empty:
    components.empty("Nothing received in this period.")
else:
    st.altair_chart(
        alt.Chart(sources)
        .mark_bar()
        .encode(
            x="source:N",
            y=alt.Y("minor:Q", title="received (minor units)"),
            color="currency:N",
            tooltip=["source", "received"],
        ),
        width="stretch",
    )
    st.dataframe(sources[["source", "currency", "received"]], hide_index=True)
