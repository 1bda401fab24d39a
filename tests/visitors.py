"""Visitors for tests that check unique-visitor counts exactly.

A HyperLogLog sketch counts two visitors who share a register as one: for 9 visitors of a breakdown
cell (`CELL_P` = 10, 1,024 registers) that happens about 3.5 % of the time, for 40 visitors of a site
(`SITE_P` = 15) about 2.4 %. The estimator's accuracy is measured statistically, with fixed salts, in
tests/unit/test_telemetry_sketches.py; the tests of the pipeline (ingest -> Pub/Sub -> counters ->
reports) instead draw visitors that each take a register of their own, so every count they check is
exact and a lost, doubled or misrouted visitor always shows.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.telemetry import sketches


class DistinctRegisters:
    """Draws visitor hashes whose breakdown-cell registers (and so their site registers) all differ."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def draw(self, hash_of: Callable[[int], str]) -> str:
        """The first `hash_of(0)`, `hash_of(1)`, ... whose register is still free (and take it)."""
        attempt = 0
        while True:
            visitor = hash_of(attempt)
            index, _ = sketches.register(visitor, sketches.CELL_P)
            if index not in self.taken:
                self.taken.add(index)
                return visitor
            attempt += 1
