"""Output manifests: a producer records the rows and sha256 of each file it wrote; a consumer
checks its inputs against them before reading, so a file cut, edited or swapped after it was
written stops the run naming the file, both counts and hashes, and the rule to run again.

Each file is read once, in 1 MiB blocks: its sha256 and line count come from the same pass;
a parquet file's row count is its footer's. A consumer hashes each input once and reads a
parquet footer only to explain a mismatch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def file_summary(path: Path) -> dict[str, Any]:
    """{"rows": rows, "sha256": hex}: parquet rows from the footer, else the number of lines."""
    sha, lines = _hash_and_count(Path(path))
    return {"rows": _rows(Path(path), lines), "sha256": sha}


def _hash_and_count(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return digest.hexdigest(), lines + (last != b"\n")  # a last line without its newline counts


def _rows(path: Path, lines: int) -> int | None:
    if path.suffix != ".parquet":
        return lines
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(path).num_rows
    except Exception:  # noqa: BLE001 - a damaged footer: reported as unreadable, never raised
        return None


def write_manifest(manifest_path: Path, rule: str, files: Iterable[Path]) -> None:
    """Write `manifest_path`: the producing rule and each file's rows and sha256 (paths relative
    to the manifest's folder)."""
    manifest_path = Path(manifest_path)
    entries = {_name(Path(f), manifest_path.parent): file_summary(Path(f)) for f in files}
    body = {"rule": rule, "files": dict(sorted(entries.items()))}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(body, indent=2) + "\n", "utf-8")


def _name(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


class ManifestMismatch(ValueError):
    """An input that differs from what its producer's manifest records."""


def check_inputs(inputs: Iterable[Path], manifests: Sequence[Path], consumer: str) -> None:
    """Raise ManifestMismatch unless every input has the sha256 (hence the rows) its manifest
    records; the message names the file, both row counts and hashes, and what to rerun."""
    recorded: dict[Path, tuple[dict[str, Any], Path, str]] = {}
    for manifest in map(Path, manifests):
        body = json.loads(manifest.read_text(encoding="utf-8"))
        for name, entry in body["files"].items():
            recorded[(manifest.parent / name).resolve()] = (entry, manifest, body["rule"])
    for path in dict.fromkeys(map(Path, inputs)):
        if path.resolve() not in recorded:
            raise ManifestMismatch(
                f"{path}: not listed in {', '.join(map(str, manifests))}; rule {consumer} only "
                "reads files a manifest vouches for: rerun the rule that writes it"
            )
        entry, manifest, rule = recorded[path.resolve()]
        sha, lines = _hash_and_count(path)
        if sha != entry["sha256"]:
            rows = _rows(path, lines)
            found = "unreadable parquet" if rows is None else f"{rows} rows"
            raise ManifestMismatch(
                f"{path}: {found}, sha256 {sha[:12]}…, but its manifest {manifest} records "
                f"{entry['rows']} rows, sha256 {entry['sha256'][:12]}…: the file was cut or "
                f"changed after rule {rule} wrote it. Rerun it (snakemake --forcerun {rule}), "
                f"then {consumer}"
            )
