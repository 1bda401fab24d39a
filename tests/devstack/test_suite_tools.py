"""The suite's own machinery: after_suite ordering and the policy-id report (make policy)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# The local stack mirrors the Google Cloud services the backend runs on (P4).
pytestmark = pytest.mark.policy("P4")

CONFTEST = """
from tests.conftest import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401
"""

TESTS = """
import pytest

@pytest.mark.after_suite
def test_scan_everything():
    pass

@pytest.mark.policy("P1", "P3")
def test_first():
    pass

@pytest.mark.policy("P3")
def test_second():
    pass
"""

MANY = "".join(f"def test_{n:02}():\n    pass\n\n" for n in range(12))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(TESTS))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_after_suite_tests_run_last(tmp_path: Path) -> None:
    result = _run(tmp_path, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--strict-markers")

    assert result.returncode == 0, result.stdout + result.stderr
    order = [line.split("::")[-1] for line in result.stdout.splitlines() if "::" in line]
    assert order == ["test_first", "test_second", "test_scan_everything"]


def test_shuffle_reorders_the_tests_by_its_seed_and_keeps_the_scans_last(tmp_path: Path) -> None:
    def order(*extra: str) -> list[str]:
        (tmp_path / "test_many.py").write_text(MANY)
        result = _run(tmp_path, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        return [line.split("::")[-1] for line in result.stdout.splitlines() if "::" in line]

    plain, shuffled = order(), order("--shuffle", "3")
    assert shuffled != plain and sorted(shuffled) == sorted(plain)
    assert shuffled == order("--shuffle", "3"), "one seed, one order: a failing order can be replayed"
    assert shuffled[-1] == plain[-1] == "test_scan_everything"


def test_policy_ids_lists_covered_and_missing_ids(tmp_path: Path) -> None:
    result = _run(tmp_path, "-m", "devstack", "policy-ids", "--count", "5", ".")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Policies with tests (2/5):" in result.stdout
    assert re.search(r"^\s+P1\s+1 test\(s\)$", result.stdout, re.M)
    assert re.search(r"^\s+P3\s+2 test\(s\)$", result.stdout, re.M)
    assert "Policies without tests (3): P2, P4, P5" in result.stdout

    strict = _run(tmp_path, "-m", "devstack", "policy-ids", "--count", "5", "--require-all", ".")
    assert strict.returncode == 1
