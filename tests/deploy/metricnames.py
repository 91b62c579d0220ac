"""The metric names votesvc exports, as Prometheus sees them, and the ones a query uses."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

from votesvc.metrics import Metrics

__all__ = ["exported_families", "exported_names", "queried_names"]

# What prometheus-client adds to a family's name in the exposition, by type (no
# ``_created``: ``serve`` runs in multiprocess mode, which does not export it).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}
_NAME = re.compile(r"\bvotesvc_\w+")


def exported_families() -> dict[str, str]:
    """Family name -> type, from a fresh :class:`Metrics` (every metric votesvc has)."""
    registry = CollectorRegistry()
    Metrics(registry)
    return {family.name: family.type for family in registry.collect()}


def exported_names() -> set[str]:
    """Every sample name a scrape of votesvc can hold (``votesvc_votes_total``, ...)."""
    return {
        name + suffix for name, kind in exported_families().items() for suffix in _SUFFIXES[kind]
    }


def queried_names(expression: str) -> set[str]:
    """The ``votesvc_*`` metric names a PromQL expression reads."""
    return set(_NAME.findall(expression))
