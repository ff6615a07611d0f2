"""Paid model calls: the provider SDKs, the API keys, attempts each reserved and booked, provider health and parking.

Imports ``core``, ``repo`` and ``money``; it must not import reporting or steps.
"""
