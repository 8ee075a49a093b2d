"""`python -m apps` runs the CLI."""

from apps.cli.main import entrypoint

entrypoint()
