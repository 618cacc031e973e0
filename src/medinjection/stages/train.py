"""Stages of workflow/rules/train.smk: the base model directory, the rendered training config,
the token-length report of a mixture and the merge of an adapter into its base model.

The `train` rule itself runs `python -m medinjection.modeling.launch` (torchrun/accelerate start
`medinjection.modeling.train` in each worker process): a launcher needs a module entry point, and
the training loop is an engine, so that entry point stays in `modeling/`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medinjection.manifests import check_folder, is_weights, write_folder_manifest
from medinjection.modeling.tiny import TinySpec, build_tiny
from medinjection.modeling.token_lengths import length_summary, read_messages, sequence_lengths
from medinjection.modeling.train_config import write_train_config
from medinjection.settings import HubModelSettings, TinyModelSettings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- rule prepare_base_model

BaseKind = Literal["tiny", "hub", "local"]


def _prepare_tiny(
    out_dir: Path, tiny: TinyModelSettings | None, corpus_files: Sequence[Path], **_: Any
) -> None:
    if tiny is None:
        raise ValueError("base_model.kind is 'tiny' but base_model.tiny is not set")
    build_tiny(TinySpec.from_dict(tiny.to_dict()), list(corpus_files), out_dir)


def _prepare_hub(out_dir: Path, hub: HubModelSettings | None, **_: Any) -> None:
    from huggingface_hub import snapshot_download

    # the config key is `repo` (workflow/schemas/config.schema.yaml, base_model.hub)
    if hub is None or not hub.repo:
        raise ValueError("base_model.kind is 'hub' but base_model.hub.repo is not set")
    revision = hub.revision
    # with HF_HUB_OFFLINE=1 this copies from the local Hugging Face cache, or fails naming it;
    # on a cluster without a cache, use base_model.kind: local (a folder of the weights)
    log.info("snapshot of %s@%s to %s", hub.repo, revision or "main", out_dir)
    snapshot_download(repo_id=hub.repo, revision=revision, local_dir=out_dir)
    if not (out_dir / "config.json").is_file():
        raise FileNotFoundError(f"snapshot of {hub.repo} in {out_dir} has no config.json")


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
    corpus_files: Sequence[Path] | str | Path,
    tiny: TinyModelSettings | None = None,
    hub: HubModelSettings | None = None,
    local_path: str | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Write the base model dir (`base_model.kind`): build a tiny model from `tiny`, download a
    Hub snapshot of `hub`, or link `local_path`; `out_manifest` records each of its files (bytes,
    sha256) for the rules that read it."""
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
    if out_manifest is not None:
        write_folder_manifest(Path(out_manifest), "prepare_base_model", [Path(out_dir)])


# ---------------------------------------------------------------- rule render_train_config


def render_train_config(hparams: Mapping[str, Any], mixture: str, path: Path) -> None:
    """Write one run's training config (the `training:` keys less `seeds`, plus its `seed`)."""
    write_train_config(hparams=dict(hparams), mixture=mixture, path=Path(path))


# ---------------------------------------------------------------- rule token_lengths


def _split_report(tokenizer: Any, path: Path, max_length: int) -> dict[str, Any]:
    totals, answers = sequence_lengths(tokenizer, read_messages(path))
    return {
        "sequence": length_summary(totals, max_length),
        "answer": length_summary(answers),
        # token-weighted mean length (sum T^2 / sum T): the attention term of the MFU formula
        "attention_length": round(float(np.square(totals).sum() / max(sum(totals), 1)), 2),
    }


def token_length_report(
    model_dir: Path,
    train_path: Path,
    validation_path: Path,
    max_length: int,
    out_path: Path,
    model_manifests: list[Path] | None = None,
) -> dict[str, Any]:
    """Write the token-length report of one mixture (train and validation) as JSON. With
    `model_manifests` (prepare_base_model's; the rule gives it) the base model's files are
    checked first, all but the weights, which this rule does not read."""
    from transformers import AutoTokenizer

    if model_manifests is not None:
        check_folder(Path(model_dir), model_manifests, "token_lengths", skip=is_weights)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = tokenizer.chat_template or ""
    report: dict[str, Any] = {
        "tokenizer": str(model_dir),
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
        "max_length": int(max_length),
        "train": _split_report(tokenizer, Path(train_path), int(max_length)),
        "validation": _split_report(tokenizer, Path(validation_path), int(max_length)),
    }
    over = report["train"]["sequence"].get("n_over_max_length", 0)
    log.info(
        "%s: %d train rows, p99 %s tokens, %d longer than max_length %d",
        train_path,
        report["train"]["sequence"]["n"],
        report["train"]["sequence"].get("p99"),
        over,
        max_length,
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


# ---------------------------------------------------------------- rule merge_adapter


def merge_adapter(
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    input_manifests: list[Path] | None = None,
    out_manifest: Path | None = None,
) -> None:
    """Load base + adapter, `merge_and_unload`, save the merged model with the tokenizer.

    With `input_manifests` (prepare_base_model's and train's; the rule gives them) every file of
    the base model and of the adapter is checked first; `out_manifest` records the merged model.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{adapter_dir} has no adapter_config.json; train the adapter first"
        )
    if input_manifests is not None:
        check_folder(Path(base_dir), input_manifests, "merge_adapter")
        check_folder(Path(adapter_dir), input_manifests, "merge_adapter")
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    if out_manifest is not None:
        write_folder_manifest(Path(out_manifest), "merge_adapter", [out_dir])
    log.info("merged %s into %s -> %s", adapter_dir, base_dir, out_dir)
