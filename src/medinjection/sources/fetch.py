"""Fetch a source's raw public files (local copy, Hugging Face Hub, GitHub) and hash them."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from medinjection.settings import LocationSettings

LOG = logging.getLogger(__name__)
LOCATION_KINDS: tuple[str, ...] = ("local", "hf", "github")
GITHUB_RAW = "https://raw.githubusercontent.com/{repo}/{revision}/{path}"
HF_CACHE_DIR = ".cache"  # huggingface_hub's local_dir metadata folder, not part of the source
SNAKEMAKE_STAMP = ".snakemake_timestamp"


def fetch(
    source: str, location: LocationSettings, raw_dir: Path, offline: bool = False
) -> str | None:
    """Copy (local) or fetch (hf via the Hub cache; github at a commit) a source's raw files into
    raw_dir; the commit fetched (hf, github) or None (local)."""
    kind = location.kind
    if kind == "local":
        _stage_local(source, location, raw_dir)
        return None
    if kind == "hf":
        return _stage_hf(source, location, raw_dir, offline)
    if kind == "github":
        return _stage_github(source, location, raw_dir, offline)
    raise ValueError(
        f"source {source!r}: location kind {kind!r} is not one of {LOCATION_KINDS} "
        f"(config key sources.{source}.location.kind)"
    )


def _stage_local(source: str, location: LocationSettings, raw_dir: Path) -> None:
    path = Path(_required(source, location, "path"))
    if not path.exists():
        hint = location.obtain or "see config/README.md for where to get it"
        raise FileNotFoundError(
            f"source {source!r}: local path {path} does not exist; provide the source's raw "
            f"files there (config key sources.{source}.location.path; {hint})"
        )
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    if path.is_dir():
        shutil.copytree(path, raw_dir)
    else:
        raw_dir.mkdir(parents=True)
        shutil.copy2(path, raw_dir / path.name)


def _stage_hf(source: str, location: LocationSettings, raw_dir: Path, offline: bool) -> str:
    """Fetch into the Hub cache (kept across reruns), copy into raw_dir; the commit SHA used."""
    from huggingface_hub import snapshot_download  # network only when a hf location is staged

    repo = _required(source, location, "repo")
    revision = _required(source, location, "revision")
    patterns = location.files
    try:
        snapshot = Path(
            snapshot_download(
                repo_id=repo,
                revision=revision,
                repo_type=location.repo_type or "dataset",
                allow_patterns=list(patterns) if patterns else None,
                local_files_only=offline,
            )
        )
    except Exception as error:  # the hub raises several types; all mean "not available"
        mode = "offline mode: it is not in the Hugging Face cache" if offline else "download failed"
        raise RuntimeError(
            f"source {source!r}: {repo}@{revision} could not be staged ({mode}: {error}). "
            "Stage it once online (unset HF_HUB_OFFLINE and data.offline), or provide it as a "
            f"local location (sources.{source}.location)"
        ) from error
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    _copy_matching(snapshot, raw_dir, list(patterns) if patterns else None)
    if not file_hashes(raw_dir):
        raise FileNotFoundError(
            f"source {source!r}: no file of {repo}@{revision} matches {patterns}; "
            f"fix config key sources.{source}.location.files"
        )
    return snapshot.name if is_commit_sha(snapshot.name) else revision


def _stage_github(source: str, location: LocationSettings, raw_dir: Path, offline: bool) -> str:
    """Download the listed files of a GitHub repository at a commit; check their sha256."""
    key = f"sources.{source}.location"
    repo, revision = _required(source, location, "repo"), _required(source, location, "revision")
    files = list(_required(source, location, "files"))
    if not is_commit_sha(str(revision)):
        raise ValueError(
            f"source {source!r}: github revision {revision!r} is not a 40-hex commit hash; pin "
            f"{key}.revision to the commit to download"
        )
    if offline:
        raise RuntimeError(
            f"source {source!r}: {repo}@{revision} is a GitHub download and data.offline / "
            f"HF_HUB_OFFLINE is set; stage it once online, or copy the files into a folder and "
            f"make {key} a local location"
        )
    checksums = dict(location.checksums or {})
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    for path in files:
        url = GITHUB_RAW.format(repo=repo, revision=revision, path=path)
        target = raw_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (https)
                target.write_bytes(response.read())
        except OSError as error:
            raise RuntimeError(f"source {source!r}: download of {url} failed: {error}") from error
        digest = _sha256(target)
        if path in checksums and checksums[path] != digest:
            raise ValueError(
                f"source {source!r}: {url} has sha256 {digest}, not {checksums[path]} "
                f"({key}.checksums); the file changed or the pin is wrong"
            )
    return str(revision)


def _copy_matching(snapshot: Path, raw_dir: Path, patterns: list[str] | None) -> None:
    """Copy the snapshot's files that match `patterns` (all when None) into raw_dir.

    Offline, snapshot_download returns the cached snapshot folder as it is, whatever
    allow_patterns says: a cache filled by a whole-repository download holds every file of the
    revision (PubMedQA's 211K-row pqa_artificial beside pqa_labeled, MedXpertQA's images.zip
    beside Text/), so the patterns are applied here, with the Hub's own matching rules.
    """
    from huggingface_hub.utils import filter_repo_objects

    files = [p.relative_to(snapshot).as_posix() for p in sorted(snapshot.rglob("*"))
             if p.is_file() and p.relative_to(snapshot).parts[0] != HF_CACHE_DIR]  # fmt: skip
    raw_dir.mkdir(parents=True)
    for rel in filter_repo_objects(items=files, allow_patterns=patterns):
        target = raw_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot / rel, target)  # follows the cache's symlinks to the blobs


def is_commit_sha(revision: str) -> bool:
    """True for a full 40-hex-digit commit hash (a pinned revision)."""
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision.lower())


def extract_archives(raw_dir: Path) -> list[str]:
    """Unpack every .zip under raw_dir next to itself (the archive is kept, and hashed)."""
    extracted = []
    for archive in sorted(Path(raw_dir).rglob("*.zip")):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                target = (archive.parent / member).resolve()
                if not target.is_relative_to(Path(raw_dir).resolve()):
                    raise ValueError(f"{archive}: member {member!r} would unpack outside {raw_dir}")
            bundle.extractall(archive.parent)
        extracted.append(archive.relative_to(raw_dir).as_posix())
    return extracted


def _required(source: str, location: LocationSettings, key: str) -> Any:
    value = getattr(location, key)
    if not value:
        raise ValueError(f"source {source!r}: location needs {key!r} (sources.{source}.location)")
    return value


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root, keyed by POSIX relative path (HF cache metadata skipped)."""
    hashes = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] != HF_CACHE_DIR:
            hashes[rel.as_posix()] = _sha256(path)
    return hashes


def check_staged(source: str, raw_dir: Path, manifest_path: Path) -> None:
    """Raise unless raw_dir holds exactly the files, with the hashes, its manifest records."""
    recorded = json.loads(Path(manifest_path).read_text(encoding="utf-8"))["files"]
    # Snakemake marks a finished directory output with this file of its own
    found = {k: v for k, v in file_hashes(Path(raw_dir)).items() if k != SNAKEMAKE_STAMP}
    changed = sorted(name for name in set(recorded) & set(found) if recorded[name] != found[name])
    missing, extra = sorted(set(recorded) - set(found)), sorted(set(found) - set(recorded))
    if changed or missing or extra:
        raise ValueError(
            f"source {source!r}: {raw_dir} differs from its manifest {manifest_path} (changed "
            f"{changed[:3]}, missing {missing[:3]}, unexpected {extra[:3]}): the staged files were "
            f"edited or damaged after staging; stage again (snakemake --forcerun stage_source)"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
