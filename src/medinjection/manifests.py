"""Output manifests: a producer records the rows and sha256 of each file it wrote; a consumer
checks its inputs against them before reading, so a file cut, edited or swapped after it was
written stops the run naming the file, both counts and hashes, and the rule to run again.

Each file is read once, in 1 MiB blocks: its sha256 and line count come from the same pass;
a parquet file's row count is its footer's. A consumer hashes each input once and reads a
parquet footer only to explain a mismatch.

A folder (a model, an adapter) has a manifest beside it, `<folder>.manifest.json`, that records
each of its files' bytes and sha256 (`write_folder_manifest`); `check_folder` refuses a file
missing, added, cut or changed, a damaged file of the same size included (its hash differs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
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


def _recorded(manifests: Sequence[Path]) -> dict[Path, tuple[dict[str, Any], Path, str]]:
    recorded: dict[Path, tuple[dict[str, Any], Path, str]] = {}
    for manifest in map(Path, manifests):
        body = json.loads(manifest.read_text(encoding="utf-8"))
        for name, entry in body["files"].items():
            recorded[(manifest.parent / name).resolve()] = (entry, manifest, body["rule"])
    return recorded


def _size(entry: dict[str, Any]) -> str:
    return f"{entry['rows']} rows" if "rows" in entry else f"{entry['bytes']} bytes"


def _rerun(rule: str, consumer: str) -> str:
    return f"Rerun it (snakemake --forcerun {rule}), then {consumer}"


def check_inputs(inputs: Iterable[Path], manifests: Sequence[Path], consumer: str) -> None:
    """Raise ManifestMismatch unless every input has the sha256 (hence the rows) its manifest
    records; the message names the file, both row counts and hashes, and what to rerun."""
    _check(list(map(Path, inputs)), list(map(Path, manifests)), consumer, _recorded(manifests))


def _check(
    inputs: list[Path],
    manifests: list[Path],
    consumer: str,
    recorded: dict[Path, tuple[dict[str, Any], Path, str]],
) -> None:
    for path in dict.fromkeys(inputs):
        if path.resolve() not in recorded:
            raise ManifestMismatch(
                f"{path}: not listed in {', '.join(map(str, manifests))}; rule {consumer} only "
                "reads files a manifest vouches for: rerun the rule that writes it"
            )
        entry, manifest, rule = recorded[path.resolve()]
        if "rows" in entry:
            sha, lines = _hash_and_count(path)
        else:  # a folder's file (weights: GBs): bytes and sha256, no line count
            sha, lines = sha256_file(path), -1
        if sha != entry["sha256"]:
            if "rows" in entry:
                rows = _rows(path, lines)
                found = "unreadable parquet" if rows is None else f"{rows} rows"
            else:
                found = f"{path.stat().st_size} bytes"
            raise ManifestMismatch(
                f"{path}: {found}, sha256 {sha[:12]}…, but its manifest {manifest} records "
                f"{_size(entry)}, sha256 {entry['sha256'][:12]}…: the file was cut or "
                f"changed after rule {rule} wrote it. {_rerun(rule, consumer)}"
            )


# ---------------------------------------------------------------- folders: models, adapters


def sha256_file(path: Path) -> str:
    """The sha256 of one file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted, symlinks followed (a linked local model, a Hub cache's
    blobs); hidden entries skipped: Snakemake's `.snakemake_timestamp` in a directory output, a
    Hub download's `.cache`, none of which a model loader reads."""
    found: list[Path] = []
    for top, dirs, files in os.walk(Path(folder), followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(top) / name for name in sorted(files) if not name.startswith("."))
    return found


def write_folder_manifest(manifest_path: Path, rule: str, folders: Iterable[Path]) -> None:
    """Write `manifest_path`: the producing rule and the bytes and sha256 of every file of
    `folders` (named relative to the manifest's folder, links kept as they are named)."""
    manifest_path = Path(manifest_path)
    entries: dict[str, dict[str, Any]] = {}
    for folder in map(Path, folders):
        files = folder_files(folder)
        if not files:
            raise ValueError(f"{folder}: no file to record in {manifest_path}")
        for path in files:
            name = Path(os.path.relpath(path, manifest_path.parent)).as_posix()
            entries[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    body = {"rule": rule, "files": dict(sorted(entries.items()))}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(body, indent=2) + "\n", "utf-8")


def check_folder(
    folder: Path,
    manifests: Sequence[Path],
    consumer: str,
    skip: Callable[[Path], bool] | None = None,
) -> None:
    """Raise ManifestMismatch unless `folder` holds exactly the files its manifest records, each
    with its sha256 (files for which `skip` is true are listed but not hashed: a consumer that
    reads only a model's tokenizer does not hash its weights). Each file is hashed once."""
    manifests = list(map(Path, manifests))
    recorded = _recorded(manifests)
    found = folder_files(folder)
    root = Path(folder).resolve()
    present = {path.resolve() for path in found}
    for path, (entry, manifest, rule) in recorded.items():
        if path.is_relative_to(root) and path not in present:
            raise ManifestMismatch(
                f"{Path(folder) / path.relative_to(root)}: missing, but its manifest {manifest} "
                f"records it ({_size(entry)}, sha256 {entry['sha256'][:12]}…): the folder was "
                f"changed after rule {rule} wrote it. {_rerun(rule, consumer)}"
            )
    for path in found:  # an added file is refused before any hashing
        if path.resolve() not in recorded:
            _check([path], manifests, consumer, recorded)
    _check([p for p in found if not (skip and skip(p))], manifests, consumer, recorded)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx")


def is_weights(path: Path) -> bool:
    """A model weights file (by suffix): what a consumer reading only the tokenizer skips."""
    return Path(path).suffix in WEIGHT_SUFFIXES


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m medinjection.manifests <manifest> <rule> <folder>...`: write a folder manifest
    (the train rule's adapter, written after the training CLI)."""
    parser = argparse.ArgumentParser(prog="python -m medinjection.manifests")
    parser.add_argument("manifest", type=Path)
    parser.add_argument("rule")
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)
    write_folder_manifest(args.manifest, args.rule, args.folders)


if __name__ == "__main__":
    main()
