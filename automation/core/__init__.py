"""Core: the exception tree, secret redaction, the price table, the validated config, text decoding, wording, and outside text kept as data.

The lowest layer: every other layer may import it; it must not import any other ``automation`` package.
"""
