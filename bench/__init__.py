"""Benchmarks of the project; each module runs with `python -m bench.<name>`."""
