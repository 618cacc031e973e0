"""Prepare the base model directory: a tiny local model, a Hub snapshot, or a local path."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from medinjection.modeling.tiny import TinySpec, build_tiny

log = logging.getLogger(__name__)

BaseKind = Literal["tiny", "hub", "local"]


def _prepare_tiny(
    out_dir: Path, tiny: Mapping[str, Any] | None, corpus_files: Sequence[Path], **_: Any
) -> None:
    if tiny is None:
        raise ValueError("base_model.kind is 'tiny' but base_model.tiny is not set")
    build_tiny(TinySpec.from_dict(tiny), list(corpus_files), out_dir)


def _prepare_hub(out_dir: Path, hub: Mapping[str, Any] | None, **_: Any) -> None:
    from huggingface_hub import snapshot_download

    # the config key is `repo` (workflow/schemas/config.schema.yaml, base_model.hub)
    if not hub or not hub.get("repo"):
        raise ValueError("base_model.kind is 'hub' but base_model.hub.repo is not set")
    revision = hub.get("revision")
    # with HF_HUB_OFFLINE=1 this copies from the local Hugging Face cache, or fails naming it;
    # on a cluster without a cache, use base_model.kind: local (a folder of the weights)
    log.info("snapshot of %s@%s to %s", hub["repo"], revision or "main", out_dir)
    snapshot_download(repo_id=hub["repo"], revision=revision, local_dir=out_dir)
    if not (out_dir / "config.json").is_file():
        raise FileNotFoundError(f"snapshot of {hub['repo']} in {out_dir} has no config.json")


def _prepare_local(out_dir: Path, local_path: str | None, **_: Any) -> None:
    if not local_path:
        raise ValueError("base_model.kind is 'local' but base_model.local_path is not set")
    source = Path(local_path).expanduser().resolve()
    if not (source / "config.json").is_file():
        raise FileNotFoundError(
            f"base_model.local_path {source} has no config.json; point it at a Hugging Face "
            "model directory (config.json, weights, tokenizer files)"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.is_symlink():
        out_dir.unlink()
    elif out_dir.exists():
        raise FileExistsError(f"{out_dir} exists and is not a symlink; remove it first")
    os.symlink(source, out_dir, target_is_directory=True)
    log.info("linked %s -> %s", out_dir, source)


PREPARERS: dict[str, Callable[..., None]] = {
    "tiny": _prepare_tiny,
    "hub": _prepare_hub,
    "local": _prepare_local,
}


def prepare_base_model(
    kind: str,
    out_dir: Path,
    tiny: dict | None,
    corpus_files: list[Path],
    hub: dict | None,
    local_path: str | None,
) -> None:
    """Write the base model dir: build a tiny model, download a Hub snapshot, or link a path."""
    try:
        preparer = PREPARERS[kind]
    except KeyError:
        raise ValueError(f"unknown base_model.kind {kind!r}; valid: {sorted(PREPARERS)}") from None
    preparer(
        out_dir=Path(out_dir),
        tiny=tiny,
        corpus_files=(
            [Path(corpus_files)]
            if isinstance(corpus_files, str | Path)  # one snakemake input file is a string
            else [Path(p) for p in corpus_files]
        ),
        hub=hub,
        local_path=local_path,
    )
