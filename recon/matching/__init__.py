"""The matching engine: which invoice each payment settles (DESIGN §5).

Pure pandas/numpy functions, no I/O, deterministic. `match` takes validated inputs (see
`recon.matching.io` for files) and returns allocations and exceptions.
"""

from recon.matching.config import MatchConfig, load_config
from recon.matching.engine import match
from recon.matching.frames import MatchInputs, MatchResult
from recon.matching.io import read_inputs, write_outputs
from recon.matching.validate import inputs_from_frames

__all__ = [
    "MatchConfig",
    "MatchInputs",
    "MatchResult",
    "inputs_from_frames",
    "load_config",
    "match",
    "read_inputs",
    "write_outputs",
]
