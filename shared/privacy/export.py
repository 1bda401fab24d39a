"""The export archive (P26, GDPR Art. 15 and 20): one ZIP, streamed straight into the exports bucket.

Layout of the archive:

    README.txt                  what is in it, in plain words
    manifest.json               categories, files and processors, with counts
    <category>.json             one per category of the data map (profile, sessions, security_events, ...)
    processors/<Name>.json      what each processor holds (its adapter's export)
    business_files/<path>       the business files, byte for byte (other exported objects: <category>/<path>)

Nothing is held in memory whole: Firestore documents are written one by one into their JSON file,
business files are copied chunk by chunk, and the ZIP goes to Cloud Storage through a resumable
upload whose buffer is one upload chunk. An account with 1 GB of files needs the memory of one
with 1 MB.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared import datamap
from shared.adapters import storage as gcs
from shared.config import Settings
from shared.privacy.places import bucket_name, describe_retention, firestore_records, storage_prefix

ZIP64_FROM = 2**31 - 1


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "path"):  # a DocumentReference
        return str(value.path)
    if hasattr(value, "latitude"):
        return {"latitude": value.latitude, "longitude": value.longitude}
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, indent=None, sort_keys=True)


def archive_object(account_id: str, request_id: str) -> str:
    place = next(p for p in datamap.STORAGE if p.bucket_setting == "EXPORTS_BUCKET")
    return f"{storage_prefix(place, account_id)}{request_id}.zip"


def staging_prefix(account_id: str, request_id: str) -> str:
    """Where processor exports wait for the archive (under the account's exports prefix)."""
    place = next(p for p in datamap.STORAGE if p.bucket_setting == "EXPORTS_BUCKET")
    return f"{storage_prefix(place, account_id)}{request_id}/"


def categories() -> dict[str, list[datamap.FirestorePlace]]:
    """Exported Firestore places by category, in registry order."""
    found: dict[str, list[datamap.FirestorePlace]] = {}
    for place in (*datamap.FIRESTORE, *datamap.SYSTEM):
        if place.export:
            found.setdefault(place.category, []).append(place)
    return found


def _write_category(
    zf: zipfile.ZipFile, db: firestore.Client, category: str, places: list[datamap.FirestorePlace], account_id: str
) -> int:
    """`<category>.json`: {"category", "places": [{"collection", "purpose", "retention", "records": [...]}]}."""
    count = 0
    with zf.open(f"{category}.json", "w") as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
        out.write('{"category": ' + dumps(category) + ', "places": [')
        for index, place in enumerate(places):
            head = {"collection": place.collection, "purpose": place.purpose}
            head["retention"] = describe_retention(place.retention)
            out.write(("," if index else "") + dumps(head)[:-1] + ', "records": [')
            for number, record in enumerate(firestore_records(db, place, account_id)):
                out.write(("," if number else "") + "\n" + dumps(record))
                count += 1
            out.write("]}")
        out.write("]}\n")
    return count


def _copy_files(
    zf: zipfile.ZipFile, client: Any, settings: Settings, account_id: str
) -> dict[str, dict[str, int | str]]:
    """Every exported object, byte for byte, under `<category>/` (the business files: `business_files/`)."""
    folders: dict[str, dict[str, int | str]] = {}
    for place in datamap.STORAGE:
        if not place.export:
            continue
        name = bucket_name(settings, place)
        if not name:
            raise RuntimeError(f"{place.bucket_setting} is not configured")
        prefix = storage_prefix(place, account_id)
        folder = folders.setdefault(place.category, {"folder": f"{place.category}/", "count": 0, "bytes": 0})
        for blob in gcs.list_names(gcs.bucket(client, name), prefix):
            relative = blob.name[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            info = zipfile.ZipInfo(f"{place.category}/{relative}", date_time=_zip_time(blob.updated))
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 1  # type: ignore[attr-defined]  # business files are often compressed already
            with zf.open(info, "w", force_zip64=(blob.size or 0) > ZIP64_FROM) as entry:
                for chunk in gcs.read_chunks(blob):
                    entry.write(chunk)
            folder["count"] = int(folder["count"]) + 1
            folder["bytes"] = int(folder["bytes"]) + (blob.size or 0)
    return folders


def _zip_time(value: datetime | None) -> tuple[int, int, int, int, int, int]:
    if value is None or value.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (value.year, value.month, value.day, value.hour, value.minute, value.second)


README = """WizyVision: a copy of the data associated with your account.

Generated {generated_at} for request {request_id}.

Every file is JSON (UTF-8), readable by any program (GDPR Art. 20: machine-readable):
{category_lines}
- processors/<name>.json: what each of our processors holds about you (the data map lists them).
- business_files/: your business files, byte for byte as you stored them; any other folder holds
  files of the category it is named after ({files} files in all).
- manifest.json: this list, with counts.

Questions about this export go to our Data Protection Officer ({dpo}).
"""


def write_archive(
    *,
    db: firestore.Client,
    client: Any,
    settings: Settings,
    account_id: str,
    request_id: str,
    processors: Iterable[tuple[str, Callable[[], dict[str, Any]]]],
    generated_at: datetime,
) -> dict[str, Any]:
    """Stream the archive into the exports bucket; returns {object, size, categories, files}."""
    target = gcs.bucket(client, settings.exports_bucket).blob(archive_object(account_id, request_id))
    manifest: dict[str, Any] = {
        "request_id": request_id,
        "account_id": account_id,
        "generated_at": generated_at.isoformat(),
        "categories": {},
        "processors": {},
    }
    with (
        target.open("wb", chunk_size=gcs.UPLOAD_CHUNK, ignore_flush=True, content_type="application/zip") as raw,
        zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        for category, places in categories().items():
            count = _write_category(zf, db, category, places, account_id)
            manifest["categories"][category] = {
                "file": f"{category}.json",
                "records": count,
                "purposes": [p.purpose for p in places],
            }
        for name, load in processors:
            zf.writestr(f"processors/{name}.json", dumps(load()) + "\n")
            manifest["processors"][name] = f"processors/{name}.json"
        manifest["files"] = _copy_files(zf, client, settings, account_id)
        files = sum(int(f["count"]) for f in manifest["files"].values())
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        lines = "\n".join(
            f"- {category}.json: {', '.join(p.purpose for p in places)}" for category, places in categories().items()
        )
        zf.writestr(
            "README.txt",
            README.format(
                generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
                request_id=request_id,
                category_lines=lines,
                files=files,
                dpo=settings.dpo_email,
            ),
        )
    target.reload()
    return {
        "bucket": settings.exports_bucket,
        "object": target.name,
        "size": target.size,
        "categories": sorted(manifest["categories"]),
        "files": files,
    }
