"""What people read: status and costs text, PR body and receipt, Discord embeds and alerts, the dashboard, metrics.

Imports any layer below (``core``, ``repo``, ``money``, ``models``); it must not import steps and never calls a model.
"""
