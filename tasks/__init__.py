"""Pipeline steps: plain functions (testable without Prefect) that flows wrap as Prefect tasks."""
