"""The record of processing activities (GDPR Art. 30) comes from the data map, and names every place (P24, P26, P29)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import datamap, ropa
from shared.cli import main
from tests.processor_fakes import processor_settings

pytestmark = pytest.mark.policy("P24", "P26")
REPO = Path(__file__).resolve().parents[2]


def test_the_record_holds_every_place_and_every_processor_of_the_map() -> None:
    doc = ropa.record_of_processing()
    json.dumps(doc)
    places = {a["place"] for a in doc["activities"]}
    for place in (*datamap.FIRESTORE, *datamap.SYSTEM):
        assert any(p.startswith(place.collection) for p in places), place.collection
    for storage in datamap.STORAGE:
        assert f"${storage.bucket_setting}/{storage.prefix}" in places
    assert [p["name"] for p in doc["processors"]] == [p.name for p in datamap.PROCESSORS]
    for processor in doc["processors"]:
        for key in ("purpose", "location", "safeguards", "export", "erasure", "retention"):
            assert processor[key], f"{processor['name']} has no {key} in shared/datamap.py"
    for activity in doc["activities"]:
        assert activity["purpose"] and activity["retention"] and activity["erasure"], activity


def test_every_category_is_described() -> None:
    doc = ropa.record_of_processing()
    undescribed = [c["category"] for c in doc["categories"] if c["description"] == "(no description)"]
    assert not undescribed, f"add a line to shared/ropa.py CATEGORIES for {undescribed}"
    for category in doc["categories"]:
        assert category["purposes"] and category["retention"], category


@pytest.mark.policy("P29")
def test_controller_and_dpo() -> None:
    doc = ropa.record_of_processing(processor_settings(DPO_EMAIL="privacy@wizyvision.example"))
    assert doc["controller"]["name"] == "WizyVision SAS"
    assert doc["controller"]["address"] == "16-18 rue de Londres, 75009 Paris, France"
    assert doc["controller"]["dpo"] == {"name": "Laurent Gasser", "email": "privacy@wizyvision.example"}
    assert ropa.record_of_processing()["controller"]["dpo"]["email"] == "dpo@wizyvision.com"


def test_transfers_and_retention_words() -> None:
    doc = ropa.record_of_processing()
    assert [t["processor"] for t in doc["transfers"]] == [p.name for p in datamap.PROCESSORS if "US" in p.location]
    assert ropa.retention_text(None, "delete").startswith("while the account is active")
    assert ropa.retention_text(None, "keep") == "kept: holds no personal data"
    from datetime import timedelta

    assert ropa.retention_text(timedelta(hours=12), "delete") == "12 hours"
    assert ropa.retention_text(timedelta(days=395), "delete") == "395 days"
    assert ropa.retention_text(timedelta(days=365 * 6), "keep") == "6 years"


def test_markdown_rendering(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["records"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Record of processing activities (GDPR Art. 30(1))")
    assert "Controller: WizyVision SAS, 16-18 rue de Londres, 75009 Paris, France." in text
    for processor in datamap.PROCESSORS:
        assert f"| {processor.name} |" in text
    for heading in (
        "## Data subjects",
        "## Categories of personal data",
        "## Processors (recipients)",
        "## Transfers outside the EU",
        "## Security measures (Art. 32)",
    ):
        assert heading in text


def test_the_command_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli", "records", "--format", "json"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert json.loads(out)["controller"]["dpo"]["email"] == "dpo@wizyvision.com"
