"""Manifests for the stand-in Snakemake objects of the script tests, written by the project's own
writers as the producing rules write them, so a consumer's manifest check runs for real."""

from __future__ import annotations

from pathlib import Path

from medinjection.manifests import write_folder_manifest


def manifest_beside(folder: Path) -> Path:
    """`<folder>.manifest.json`: where the rules keep a model's or an adapter's manifest."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}.manifest.json"


def record_folder(folder: Path, rule: str) -> Path:
    """Write the manifest that `rule` (prepare_base_model, train, merge_adapter) writes for
    `folder`, beside it; return its path."""
    manifest = manifest_beside(folder)
    write_folder_manifest(manifest, rule, [Path(folder)])
    return manifest
