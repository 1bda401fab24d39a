"""Distinct visitors with HyperLogLog sketches stored as Firestore registers: never a per-visitor record.

A sketch of precision p is m = 2^p registers. A visitor hash (the daily-salted BLAKE2b of the ingest,
uniform 128 bits) selects one register with its first p bits and offers a rank (the position of the
first 1 bit in the next 64 - p bits); the register keeps the maximum rank it was offered. So:

- adding a visitor to a stored sketch is one Firestore `Maximum` transform on one field
  (`cells.<value>.r.<register>`): a blind, commutative, idempotent write that needs no read and no
  transaction, so a whole message folds in one atomic batch however many folds run at once (the
  serialized-sketch alternative, Apache DataSketches merged in transactions, collapsed below one
  message per second under concurrent pushes on the Firestore emulator: every fold read-locked the
  same documents);
- sketches merge by taking the maximum of each register (the shards of a day, the cells folded
  into "other");
- a register holds a small number derived from a hash of a hash keyed by a salt that is deleted
  after 48 hours: nothing in a sketch leads back to a visitor, and only registers that were hit are
  stored (a cell seen by 3 visitors holds 3 small numbers).

Estimation: Otmar Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
sketches", 2017), unbiased from 0 to billions with no empirical bias table; relative standard error
1.04 / sqrt(m). `SITE_P = 15` (0.57 %) for the daily unique visitors of a site: measured over 32
salted days of 500 to 50,000 visitors in tests/unit/test_telemetry_sketches.py, worst error under
the 2 % promised; `CELL_P = 10` (3.3 %) for breakdown cells. Below a few dozen visitors a cell is
counted exactly unless two visitors share a register, which can only undercount: the "fewer than 5
visitors" rule of the reports then errs on the side of folding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

SITE_P = 15
CELL_P = 10
HASH_BITS = 64

Registers = dict[int, int]


def register(visitor: str, p: int) -> tuple[int, int]:
    """(register index, rank) that the visitor hash (hex, >= 64 bits) offers to a sketch of precision p."""
    x = int(visitor[:16], 16)
    q = HASH_BITS - p
    index = x >> q
    rest = x & ((1 << q) - 1)
    return index, q - rest.bit_length() + 1


def add(registers: Registers, visitor: str, p: int) -> Registers:
    index, rank = register(visitor, p)
    if registers.get(index, 0) < rank:
        registers[index] = rank
    return registers


def load(stored: Mapping[str, object] | None) -> Registers:
    """Registers as Firestore stores them (string keys) -> {index: rank}."""
    if not stored:
        return {}
    return {int(k): int(v) for k, v in stored.items() if isinstance(v, int | float)}  # type: ignore[arg-type]


def merge(sketches: Iterable[Registers]) -> Registers:
    merged: Registers = {}
    for registers in sketches:
        for index, rank in registers.items():
            if merged.get(index, 0) < rank:
                merged[index] = rank
    return merged


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


def estimate(registers: Registers, p: int) -> float:
    """Ertl's improved HyperLogLog estimate of the number of distinct visitors."""
    m = 1 << p
    q = HASH_BITS - p
    counts = [0] * (q + 2)
    for rank in registers.values():
        counts[min(max(rank, 0), q + 1)] += 1
    counts[0] += m - len(registers)
    z = m * _tau(1.0 - counts[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + counts[k])
    z += m * _sigma(counts[0] / m)
    return 0.0 if math.isinf(z) else m * m / (2.0 * math.log(2.0)) / z


def count(sketches: Iterable[Registers], p: int) -> int:
    """The estimated distinct visitors of the union of `sketches`, rounded."""
    return round(estimate(merge(sketches), p))
