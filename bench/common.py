"""Shared helpers of the benchmarks: percentiles, a results table, free ports, waiting for a port."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def row(name: str, value: str, baseline: str, ratio: float) -> str:
    return f"  {name:<44} {value:>12}   baseline {baseline:>12}   ratio {ratio:6.2f}x"
