"""A second, independent generator of labelled books, only for evaluating the matching engine.

Written apart from `connectors.sandbox.synth` (plain Python and `random`, other clients, languages, tenant
invoice numbering, reference habits and bank quirks) so the engine can be measured on books it
was not tuned to. `generate_books(seed)` returns the §4.3 files as text frames and the truth.
"""

from bench.books2.world import Books, generate_books

__all__ = ["Books", "generate_books"]
