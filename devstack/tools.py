"""Check the system tools the emulators need, before starting anything."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from devstack.errors import DevstackError

REPO_ROOT = Path(__file__).resolve().parent.parent


def firebase_bin(root: Path = REPO_ROOT) -> Path:
    return root / "node_modules" / ".bin" / "firebase"


def _gcloud_sdk_root(gcloud: str) -> Path | None:
    candidates = [Path(gcloud).resolve().parent.parent, Path("/usr/lib/google-cloud-sdk")]
    for candidate in candidates:
        if (candidate / "platform").is_dir():
            return candidate
    return None


def check_tools(services: Iterable[str], root: Path = REPO_ROOT) -> None:
    """Raise DevstackError with ONE line naming what to install, if anything is missing."""
    wanted = set(services)
    if wanted & {"firestore", "pubsub"}:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            raise DevstackError(
                "gcloud not found: install the Google Cloud CLI with the firestore and "
                "pubsub emulator components (Debian: apt-get install google-cloud-cli "
                "google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator)"
            )
        sdk = _gcloud_sdk_root(gcloud)
        components = {
            "firestore": ("cloud-firestore-emulator", "google-cloud-cli-firestore-emulator"),
            "pubsub": ("pubsub-emulator", "google-cloud-cli-pubsub-emulator"),
        }
        for service, (folder, package) in components.items():
            if service in wanted and sdk is not None and not (sdk / "platform" / folder).is_dir():
                raise DevstackError(
                    f"the gcloud {service} emulator is not installed: apt-get install "
                    f"{package} (or: gcloud components install {folder.removeprefix('cloud-')})"
                )
        if shutil.which("java") is None:
            raise DevstackError(
                "java not found: install a Java 11+ runtime for the Firestore and Pub/Sub "
                "emulators (Debian: apt-get install openjdk-17-jre-headless)"
            )
    if wanted & {"auth", "node"}:
        for tool in ("node", "npm"):
            if shutil.which(tool) is None:
                raise DevstackError(
                    f"{tool} not found: install Node.js 20+ with npm for the Firebase Auth "
                    "emulator (Debian: apt-get install nodejs npm)"
                )
        if "auth" in wanted and not firebase_bin(root).exists():
            raise DevstackError(
                f"{firebase_bin(root)} not found: run `npm ci` in {root} (make run and make test do it)"
            )
    if "storage" in wanted:
        try:
            import gcp_storage_emulator  # noqa: F401
        except ImportError:
            raise DevstackError(
                "gcp-storage-emulator not installed in this Python: pip install -r requirements-dev.txt"
            ) from None
    if "smtp" in wanted:
        try:
            import aiosmtpd  # noqa: F401
        except ImportError:
            raise DevstackError("aiosmtpd not installed in this Python: pip install -r requirements-dev.txt") from None
    if "stripe" in wanted:
        try:
            import localstripe  # noqa: F401
        except ImportError:
            raise DevstackError(
                "localstripe not installed in this Python: pip install -r requirements-dev.txt"
            ) from None
