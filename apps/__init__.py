"""The entry points, the top floor: the `recon` CLI, the demo and the webhook receiver.

They start flows and call the core's services; nothing below imports them.
"""
