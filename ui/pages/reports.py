"""Reports: the auditor's signed reconciliation report for a tenant and period, as CSV (a zip),
XLSX or PDF, with its digest shown."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from ui import components, state

FORMATS = {
    "csv": ("zip", "application/zip"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pdf": ("pdf", "application/pdf"),
}

st.title("Reports")
tenant = state.tenant()
if not state.can("export"):
    st.info("Your role cannot export reports.")
    st.stop()
first, last = state.default_period(30)
with st.form("report"):
    period = st.date_input("Period", (first, last), key="report_period")
    fmt = st.radio("Format", list(FORMATS), horizontal=True, key="report_format")
    submitted = st.form_submit_button("Build report")
if submitted:
    if not isinstance(period, tuple) or len(period) != 2:
        st.error("pick the first and the last day of the period")
        st.stop()
    from recon.reports.build import build_report
    from recon.reports.write import write_report

    with st.spinner("building the report"):
        report = components.call(build_report, state.engine(), state.acting(), tenant, *period)
        if report is not None:
            extension, mime = FORMATS[fmt]
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"recon-{tenant}-{period[0]}-{period[1]}.{extension}"
                written = components.call(write_report, report, fmt, path)
                if written is not None:
                    st.session_state["report_file"] = (
                        path.name,
                        path.read_bytes(),
                        mime,
                        written.digest,
                        written.key_id,
                    )
kept = st.session_state.get("report_file")
if kept:
    name, data, mime, digest, key_id = kept
    st.success(f"{name} is ready")
    st.text(
        f"SHA-256 digest of the content: {digest}\nsigned with audit_export_signing_key id {key_id}"
    )
    st.download_button(
        f"Download {name}", data=data, file_name=name, mime=mime, key="report_download"
    )
    st.caption("`recon export verify FILE` checks that the file is untouched.")
else:
    components.empty("Choose a period and a format, then build the report.")
