"""Stage a source's raw public files into resources/sources/{source}/raw with a hash manifest."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
LOCATION_KINDS: tuple[str, ...] = ("local", "hf")
HF_CACHE_DIR = ".cache"  # huggingface_hub's local_dir metadata folder, not part of the source


def stage_source(source: str, location: dict[str, Any], raw_dir: Path, manifest_path: Path) -> None:
    """Copy (local) or download (hf) a source's raw files, then write its manifest."""
    raw_dir = Path(raw_dir)
    kind = location.get("kind")
    if kind == "local":
        _stage_local(source, location, raw_dir)
    elif kind == "hf":
        _stage_hf(source, location, raw_dir)
    else:
        raise ValueError(
            f"source {source!r}: location kind {kind!r} is not one of {LOCATION_KINDS} "
            f"(config key sources.{source}.location.kind)"
        )
    files = file_hashes(raw_dir)
    if not files:
        raise FileNotFoundError(f"source {source!r}: nothing was staged into {raw_dir}")
    manifest = {"source": source, "location": location, "files": files}
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    Path(manifest_path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    LOG.info("%s: staged %d files into %s", source, len(files), raw_dir)


def _stage_local(source: str, location: dict[str, Any], raw_dir: Path) -> None:
    path = Path(_required(source, location, "path"))
    if not path.exists():
        raise FileNotFoundError(
            f"source {source!r}: local path {path} does not exist; provide the source's raw "
            f"files there (config key sources.{source}.location.path)"
        )
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    if path.is_dir():
        shutil.copytree(path, raw_dir)
    else:
        raw_dir.mkdir(parents=True)
        shutil.copy2(path, raw_dir / path.name)


def _stage_hf(source: str, location: dict[str, Any], raw_dir: Path) -> None:
    from huggingface_hub import snapshot_download  # network only when a hf location is staged

    patterns = location.get("files")
    if not patterns:
        raise ValueError(
            f"source {source!r}: hf location needs `files` (glob patterns of the raw files to "
            f"fetch; config key sources.{source}.location.files)"
        )
    raw_dir.mkdir(parents=True, exist_ok=True)
    snapshot_download(
        repo_id=_required(source, location, "repo"),
        revision=_required(source, location, "revision"),
        repo_type=location.get("repo_type", "dataset"),
        allow_patterns=list(patterns),
        local_dir=raw_dir,
    )
    if not file_hashes(raw_dir):
        raise FileNotFoundError(
            f"source {source!r}: no file of {location['repo']}@{location['revision']} matches "
            f"{patterns}; fix config key sources.{source}.location.files"
        )


def _required(source: str, location: dict[str, Any], key: str) -> Any:
    if not location.get(key):
        raise ValueError(f"source {source!r}: location needs {key!r} (sources.{source}.location)")
    return location[key]


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, keyed by POSIX relative path (HF cache metadata skipped)."""
    hashes = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] != HF_CACHE_DIR:
            hashes[rel.as_posix()] = _sha256(path)
    return hashes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
