"""Provider connectors: one module per provider, plus local fake providers in `sandbox/`."""
