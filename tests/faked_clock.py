"""A faked clock (libfaketime) reaches the bot's subprocesses too.

``faketime '2027-06-01 12:00:00' python -m pytest`` sets ``LD_PRELOAD`` and ``FAKETIME*``
for the test process; a subprocess given a hand-built environment would lose them and run
at the real date. Every hand-built environment adds ``faked_clock_env()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# libfaketime's own variables, and the loader variables that bring it in (Linux, macOS).
_LOADER = ("LD_PRELOAD", "DYLD_INSERT_LIBRARIES", "DYLD_FORCE_FLAT_NAMESPACE")


def faked_clock_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables of a faked clock in ``environ`` (empty when the clock is real)."""
    return {name: value for name, value in environ.items() if name in _LOADER or name.startswith("FAKETIME")}
