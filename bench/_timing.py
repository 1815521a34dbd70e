"""Timing on a noisy machine: repeat, then summarise by best, median and percentiles."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def timed(action: Callable[[], object]) -> float:
    """Seconds one call of ``action`` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best(samples: Sequence[float]) -> float:
    """The fastest sample: the least disturbed by other work on the machine."""
    return min(samples)


def median(samples: Sequence[float]) -> float:
    """The middle sample."""
    return statistics.median(samples)


def percentile(samples: Sequence[float], pct: int) -> float:
    """The ``pct``-th percentile (1..99) of at least two samples."""
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]
