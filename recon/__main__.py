"""`python -m recon` runs the CLI."""

from recon.cli.main import entrypoint

entrypoint()
