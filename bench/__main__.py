"""`make bench`: start the local stack on free ports, run every benchmark, print ratios to baselines."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import auth, billing, privacy, retention, telemetry
from devstack import Stack

COST = 12


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        stack = Stack(run_dir=Path(tmp), extra_env={"BCRYPT_COST": str(COST)}, log=lambda _line: None)
        stack.start()
        try:
            lines = ["", "make bench — every figure against a baseline measured in this run", ""]
            lines += auth.signin_latency(stack, COST)
            lines.append("")
            lines += auth.parallel_signins(stack, COST)
            lines.append("")
            lines += auth.forgot_password(stack)
            lines.append("")
            lines += auth.cold_start(stack)
            lines.append("")
            # Before telemetry: the storage emulator slows down with every object it holds.
            lines += privacy.run(stack)
            lines.append("")
            lines += billing.run(stack)
            lines.append("")
            lines += telemetry.run(stack)
            lines.append("")
            lines += retention.run(stack)
            print("\n".join(lines), flush=True)
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
