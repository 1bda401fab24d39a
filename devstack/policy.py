"""Which policy ids (P1..Pn) have tests: collected from ``@pytest.mark.policy`` markers."""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from typing import Any

_ID = re.compile(r"^P(\d+)$")


class _Collector:
    def __init__(self) -> None:
        self.by_id: dict[str, list[str]] = defaultdict(list)
        self.invalid: list[str] = []

    def pytest_collection_finish(self, session: Any) -> None:
        for item in session.items:
            for marker in item.iter_markers("policy"):
                for arg in marker.args:
                    if isinstance(arg, str) and _ID.match(arg):
                        self.by_id[arg].append(item.nodeid)
                    else:
                        self.invalid.append(f"{item.nodeid}: {arg!r}")


def collect(paths: list[str]) -> tuple[dict[str, list[str]], list[str], int]:
    """Run pytest's collection only; return (id -> test node ids, invalid markers, exit)."""
    import pytest

    collector = _Collector()
    code = pytest.main(
        ["--collect-only", "-q", "-p", "no:cacheprovider", *paths],
        plugins=[collector],
    )
    return dict(collector.by_id), collector.invalid, int(code)


def main(count: int = 30, require_all: bool = False, paths: list[str] | None = None) -> int:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        by_id, invalid, code = collect(paths or ["tests"])
    if code not in (0, 5):
        print(buffer.getvalue())
        print(f"policy-ids: test collection failed (pytest exit {code})", file=sys.stderr)
        return int(code)
    wanted = [f"P{i}" for i in range(1, count + 1)]
    covered = [p for p in wanted if p in by_id]
    missing = [p for p in wanted if p not in by_id]
    extra = sorted((p for p in by_id if p not in wanted), key=lambda p: int(p[1:]))
    print(f"Policies with tests ({len(covered)}/{len(wanted)}):")
    for pid in covered:
        print(f"  {pid:<4} {len(by_id[pid]):>3} test(s)")
    print(f"Policies without tests ({len(missing)}): {', '.join(missing) or 'none'}")
    if extra:
        print(f"Ids beyond P{count}: {', '.join(extra)}")
    if invalid:
        print("Invalid policy markers:")
        for line in invalid:
            print(f"  {line}")
    if invalid or (require_all and missing):
        return 1
    return 0
