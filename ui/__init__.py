"""The Streamlit ops UI: a thin skin over the services in `recon/review/` and `recon/reports/`."""
