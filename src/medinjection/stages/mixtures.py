"""Rule of workflow/rules/mixtures.smk: draw one training mixture (medinjection.mixtures) and
write it as chat JSONL (train, validation) with its manifest."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from medinjection.manifests import check_inputs
from medinjection.mixtures import draw_mixture
from medinjection.prompts import training_messages
from medinjection.records import Record
from medinjection.settings import MixturesSettings

LOG = logging.getLogger(__name__)
_JSON = json.JSONEncoder(ensure_ascii=False)  # one encoder for every line (json.dumps makes one)


def build_mixture(
    name: str,
    mixtures: MixturesSettings,
    prompt_version: str,
    train_files: list[Path],
    validation_files: list[Path],
    out_train: Path,
    out_validation: Path,
    out_manifest: Path,
    input_manifests: list[Path] | None = None,
) -> None:
    """Draw mixture `name` (its shares: mixtures.definitions[name]) and write chats plus a manifest
    (the dataset splits first checked against `input_manifests`, build_dataset's)."""
    if input_manifests is not None:
        check_inputs([*train_files, *validation_files], input_manifests, "build_mixture")
    if name not in mixtures.definitions:
        raise ValueError(
            f"mixture {name!r} is not in mixtures.definitions ({sorted(mixtures.definitions)})"
        )
    shares = {origin: float(w) for origin, w in mixtures.definitions[name].to_dict().items()}
    train, validation, from_train = draw_mixture(
        name, shares, train_files, validation_files, mixtures
    )
    seed, validation_origins = mixtures.seed, mixtures.validation_origins
    train_sha = _write_jsonl(train, Path(out_train), f"{seed}:{name}:train", prompt_version)
    val_key = f"{seed}:shared:validation" if validation_origins else f"{seed}:{name}:validation"
    val_sha = _write_jsonl(validation, Path(out_validation), val_key, prompt_version)
    manifest: dict[str, Any] = {
        "mixture": name,
        "size": mixtures.size,
        "shares": {o: shares[o] for o in sorted(shares)},
        "counts": _counts(train),
        "train_sha256": train_sha,
        "validation_size": mixtures.validation_size,
        "validation_counts": _counts(validation),
        "validation_sha256": val_sha,
        "validation_from_train": from_train,
        "validation_shared_from": sorted(validation_origins or []),
        "seed": seed,
        "tasks": list(mixtures.tasks),
        "prompt_version": prompt_version,
    }
    Path(out_manifest).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    LOG.info("mixture %s: %d train, %d validation records", name, len(train), len(validation))


def _counts(records: list[Record]) -> dict[str, dict[str, dict[str, int]]]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (origin, source, task), n in sorted(
        Counter((r.origin, r.source, r.task) for r in records).items()
    ):
        counts.setdefault(origin, {}).setdefault(source, {})[task] = n
    return counts


def _write_jsonl(records: list[Record], path: Path, order_key: str, version: str) -> str:
    ordered = sorted(records, key=lambda r: hashlib.sha256(f"{order_key}:{r.id}".encode()).digest())
    lines = [
        _JSON.encode(
            {
                "id": r.id,
                "origin": r.origin,
                "source": r.source,
                "task": r.task,
                "messages": training_messages(r, version),
            }
        )
        + "\n"
        for r in ordered
    ]
    data = "".join(lines).encode("utf-8")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()
