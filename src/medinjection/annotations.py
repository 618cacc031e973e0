"""Stage the physician annotations used by the meta-evaluation into one normalized JSONL."""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
REQUIRED_FIELDS = ("id", "Question", "verite_terrain", "equivalence")
KNOWN_FIELDS = frozenset({*REQUIRED_FIELDS, "preference"})
AUTO_FIELD = "auto"  # metaeval.candidate_field: the one field that is not a known one


def _read_items(raw: bytes, origin: str) -> list[dict[str, Any]]:
    text = raw.decode("utf-8").strip()
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _fetch(location: dict[str, Any]) -> tuple[bytes, str]:
    if location["kind"] == "local":
        path = Path(location["path"])
        if not path.exists():
            raise FileNotFoundError(
                f"metaeval.annotations.path: {path} does not exist; "
                f"{location.get('obtain', 'provide the annotation file')}"
            )
        return path.read_bytes(), str(path)
    if location["kind"] == "url":
        with urllib.request.urlopen(location["url"], timeout=60) as response:  # noqa: S310
            return response.read(), location["url"]
    raise ValueError(
        f"metaeval.annotations.kind: {location['kind']!r} is not supported here (use local or url)"
    )


def _candidate_field(item: dict[str, Any], configured: str, origin: str) -> str:
    """The candidate-answer column of an item: the configured name, or with ``auto`` the only
    field outside id/Question/verite_terrain/equivalence/preference."""
    if configured != AUTO_FIELD:
        return configured
    extra = sorted(set(item) - KNOWN_FIELDS)
    if len(extra) != 1:
        raise ValueError(
            f"{origin}: item {item.get('id')!r}: metaeval.candidate_field is auto but the item has "
            f"{len(extra)} candidate column(s) {extra} besides {sorted(KNOWN_FIELDS)}; name the "
            "column in metaeval.candidate_field"
        )
    return extra[0]


def stage_annotations(location: dict[str, Any], candidate_field: str, out_path: Path) -> None:
    """Read the authors' annotation file, check it, rename the candidate column to `candidate`."""
    raw, origin = _fetch(location)
    expected = location.get("sha256")
    digest = hashlib.sha256(raw).hexdigest()
    if expected and digest != expected:
        raise ValueError(f"{origin}: sha256 {digest} differs from metaeval.annotations.sha256")
    items = _read_items(raw, origin)
    rows = []
    for item in items:
        field = _candidate_field(item, candidate_field, origin)
        missing = [f for f in (*REQUIRED_FIELDS, field) if f not in item]
        if missing:
            raise ValueError(
                f"{origin}: item {item.get('id')!r} lacks field(s) {missing}; "
                f"check metaeval.candidate_field (fields present: {sorted(item)})"
            )
        if item["equivalence"] not in ("Oui", "Non"):
            raise ValueError(f"{origin}: item {item['id']!r} equivalence must be Oui/Non")
        row = {k: v for k, v in item.items() if k != field}
        row["candidate"] = item[field]
        row["generator"] = field  # the authors name the column after the generating model
        rows.append(row)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    log.info("staged %d annotated pairs from %s (sha256 %s)", len(rows), origin, digest)
