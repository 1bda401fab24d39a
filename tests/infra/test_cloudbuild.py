"""cloudbuild.yaml: the suite runs before any deploy, the deploy is Terraform, no secret in the file (P4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CLOUDBUILD = Path(__file__).resolve().parents[2] / "cloudbuild.yaml"

pytestmark = pytest.mark.policy("P4")


def steps() -> list[str]:
    """The text of each step (`- id: ...` blocks under `steps:`), in order."""
    text = CLOUDBUILD.read_text()
    body = text.split("\nsteps:\n", 1)[1]
    return [chunk for chunk in re.split(r"\n  - id: ", "\n" + body) if chunk.strip()]


def test_tests_run_before_the_deploy_and_the_deploy_is_terraform() -> None:
    all_steps = steps()
    test_index = next(i for i, s in enumerate(all_steps) if "make test" in s)
    deploy_index = next(i for i, s in enumerate(all_steps) if "terraform apply" in s)
    assert test_index < deploy_index, "the test suite must run before terraform apply"
    deploy = all_steps[deploy_index]
    assert "dir: terraform" in deploy
    assert re.search(r"waitFor: \[[^\]]*\btest\b", deploy), "deploy must wait for the test step"
    assert "terraform init" in deploy and "-backend-config=" in deploy and "bucket=" in deploy
    assert "-auto-approve" in deploy
    assert "allowFailure" not in CLOUDBUILD.read_text(), "a failing step must stop the build"


def test_no_secret_in_cloudbuild() -> None:
    text = CLOUDBUILD.read_text()
    substitutions = re.findall(r"(?m)^  (_[A-Z0-9_]+):", text)
    assert substitutions, "substitutions not found"
    secretish = [s for s in substitutions if re.search(r"PASSWORD|SECRET|TOKEN|PEPPER|KEY", s)]
    assert not secretish, f"secrets never travel as substitutions: {secretish}"
    assert "secretEnv" not in text and "availableSecrets" not in text
    assert not re.search(r"sk_(live|test)_|whsec_|-----BEGIN|AIza[0-9A-Za-z_-]{20}", text)
    assert re.search(r"(?m)^  _REGION: europe-", text), "the default region stays in the EU"
