"""The staff CLI as a newcomer meets it: a missing configuration is one line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import cli, config

pytestmark = pytest.mark.policy("P28", "P27")


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    config.reset_settings()
    yield
    config.reset_settings()


def test_without_configuration_a_command_says_so_in_one_line(
    bare_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["grant-role", "--account-id", "acc_1", "--role", "admin", "--reason", "first admin"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "GOOGLE_CLOUD_PROJECT" in err and "--local" in err


def test_local_without_a_running_stack_says_so_in_one_line(
    bare_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from devstack import stack

    attach = stack.StackInfo.attach.__func__  # type: ignore[attr-defined]
    # The real attach, reading a stack.json that does not exist (no `make run` is up).
    monkeypatch.setattr(stack.StackInfo, "attach", classmethod(lambda cls: attach(cls, tmp_path / "stack.json")))
    code = cli.main(["--local", "scheduler", "list"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no running stack" in err, err
