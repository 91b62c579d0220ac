"""Garbage-collector settings for a serving process.

A vote allocates a few dozen short-lived container objects (futures, dicts,
tuples, coroutines). With CPython's default thresholds (700, 10, 10) the
collector runs every few dozen requests, and every so often a full collection
walks every object the process holds, start-up imports included: a pause of
milliseconds that shows as the p99. After start-up, :func:`tune_for_serving`
moves every object that exists to the permanent generation (``gc.freeze()``),
so collections only look at objects made since, and raises the thresholds so
that they run rarely. Reference counting still frees almost everything at
once; the collector is only there for cycles.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["tune_for_serving"]

log = logging.getLogger(__name__)

# Young objects before a collection, and young / middle collections before an
# older one: measured on the vote path (see BENCHMARKS.md), not tuned to the digit.
THRESHOLDS = (50_000, 20, 100)


def tune_for_serving(thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
    """Freeze what start-up made and collect rarely from now on (call once, after start-up)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    log.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), thresholds)
