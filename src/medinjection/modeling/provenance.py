"""What produced a training run: commit, package and library versions, input hashes."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import medinjection

LIBRARIES: tuple[str, ...] = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_state() -> dict[str, Any]:
    """Commit of the package's checkout and whether it has uncommitted changes (None: no git)."""
    cwd = Path(medinjection.__file__).parent

    def _git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit or None, "git_dirty": bool(status) if commit else None}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the training libraries."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def training_provenance(
    model_dir: Path, train_path: Path, validation_path: Path, config_path: Path, fingerprint: str
) -> dict[str, Any]:
    """Provenance block of a training run's metrics.json."""
    return {
        "package_version": medinjection.__version__,
        **git_state(),
        "libraries": library_versions(),
        "run_fingerprint": fingerprint,
        "base_model": str(model_dir),
        "base_config_sha256": sha256_file(Path(model_dir) / "config.json"),
        "train_sha256": sha256_file(train_path),
        "validation_sha256": sha256_file(validation_path),
        "train_config_sha256": sha256_file(config_path),
    }
