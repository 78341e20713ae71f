"""Pausing Python's cyclic garbage collector while knowledge and its index are built.

Loading validates every fact into objects and indexing makes millions more, and almost none of them become
garbage: a collection in the middle of that only walks objects that all survive. This module owns the one rule
for it: `paused()` keeps the collector off for the whole of a load or a build, even when they nest (loading
calls validation and then indexing), and turns it back on only if it was on before. The collector's first pass
after a pause walks what was made meanwhile once, instead of once per step.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off within; on again after, if it was on before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
