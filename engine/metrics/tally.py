"""Labelled counters and histograms kept as plain numbers; Prometheus samples are made of them only when scraped.

prometheus_client is imported by the first scrape (engine/metrics/exposition.py, through engine/lazy.py), not
by every engine: one that is never scraped does not carry its 0.7 MiB. The numbers are what prometheus_client's
Counter and Histogram would hold for the same calls (its default buckets, `+Inf` last, sums added in order).
Everything here runs on the event loop; a scrape reads `snapshot()` copies, so its thread never sees a change.
"""
from __future__ import annotations

from dataclasses import dataclass

INF = float("inf")
# prometheus_client's default buckets: request latency's since the metrics were first served.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, INF)

Labels = tuple[str, ...]


@dataclass(frozen=True)
class Series:
    """One histogram series at a scrape: the count of each bucket alone (not cumulative), and the sum."""

    labels: Labels
    counts: tuple[float, ...]
    sum: float


@dataclass(frozen=True)
class CounterCopy:
    name: str
    documentation: str
    labelnames: Labels
    values: list[tuple[Labels, float]]


@dataclass(frozen=True)
class HistogramCopy:
    name: str
    documentation: str
    labelnames: Labels
    bounds: tuple[float, ...]
    series: list[Series]


class Counters:
    def __init__(self, name: str, documentation: str, labelnames: Labels) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._values: dict[Labels, float] = {}

    def touch(self, labels: Labels) -> None:
        """The series exists from now on, at 0 until counted."""
        self._values.setdefault(labels, 0.0)

    def inc(self, labels: Labels, amount: float) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def snapshot(self) -> CounterCopy:
        return CounterCopy(self.name, self.documentation, self.labelnames, list(self._values.items()))


class Histograms:
    def __init__(self, name: str, documentation: str, labelnames: Labels,
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = buckets if buckets[-1] == INF else (*buckets, INF)
        self._counts: dict[Labels, list[float]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, labels: Labels, value: float) -> None:
        counts = self._counts.get(labels)
        if counts is None:
            counts = self._counts[labels] = [0.0] * len(self.bounds)
        self._sums[labels] = self._sums.get(labels, 0.0) + value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                counts[i] += 1
                break

    def snapshot(self) -> HistogramCopy:
        return HistogramCopy(self.name, self.documentation, self.labelnames, self.bounds,
                             [Series(labels, tuple(counts), self._sums[labels]) for labels, counts in self._counts.items()])
