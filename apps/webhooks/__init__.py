"""The webhook receiver: signed provider events in, deduplicated, out as Prefect events."""
