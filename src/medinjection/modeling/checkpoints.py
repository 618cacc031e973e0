"""Resumable training: per-run checkpoint folders, the last complete checkpoint, stop on signal.

Checkpoints live outside the train rule's declared outputs (Snakemake deletes those when a job
fails), under `<checkpoints>/<run fingerprint>/checkpoint-<step>/`, so a retry, a SLURM requeue
after preemption, or a rerun after a timeout resumes from the last complete checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from medinjection.modeling.train_config import NON_MODEL_KEYS

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"  # written last by transformers' _save_checkpoint


class TrainingInterrupted(RuntimeError):
    """Training stopped before its last step (signal); the checkpoint saved lets a rerun resume."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The modules whose code decides what a checkpoint holds (model loading, data rows, the TRL/PEFT
# configs, resuming): an edit to them starts a fresh run instead of resuming an old one.
TRAINING_CODE: tuple[str, ...] = ("train.py", "train_config.py", "kernels.py", "checkpoints.py")
# Libraries whose version changes what the same code computes or how it saves.
TRAINING_LIBRARIES: tuple[str, ...] = ("torch", "transformers", "trl", "peft")


def model_dir_sha256(model_dir: Path) -> str:
    """Hash of every file of the base model folder: weights, tokenizer, config, chat template.

    A different base with the same architecture (config.json alike) or a retokenized one gives a
    different hash. Hidden entries (a Hub download's `.cache`) are skipped.
    """
    root = Path(model_dir)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            digest.update(f"{rel.as_posix()}\0{_sha256(path)}\n".encode())
    return digest.hexdigest()


def training_code_sha256() -> str:
    """Hash of the training modules' source (TRAINING_CODE) and library versions."""
    from importlib import metadata

    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    for library in TRAINING_LIBRARIES:
        try:
            digest.update(f"{library}=={metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} absent".encode())
    return digest.hexdigest()


def run_fingerprint(
    hparams: Mapping[str, Any], model_dir: Path, train_path: Path, validation_path: Path
) -> str:
    """Hash of everything that shapes the run; checkpoints are kept per hash.

    It covers the hyper-parameters (less the scheduling keys), every file of the base model
    (weights, tokenizer), the train and validation data, and the training code and library
    versions: a checkpoint is resumed only by the very run that wrote it.
    """
    blob = json.dumps(
        {
            "hparams": {k: v for k, v in hparams.items() if k not in NON_MODEL_KEYS},
            "base_model": model_dir_sha256(Path(model_dir)),
            "train": _sha256(Path(train_path)),
            "validation": _sha256(Path(validation_path)),
            "code": training_code_sha256(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def finished_steps(checkpoint: str | Path | None) -> int | None:
    """The step of a checkpoint that ends its run (global_step >= max_steps), else None."""
    if checkpoint is None:
        return None
    state = json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))
    step, total = int(state.get("global_step") or 0), int(state.get("max_steps") or 0)
    return step if total > 0 and step >= total else None


def _step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def is_complete(checkpoint: Path) -> bool:
    """A checkpoint whose trainer state was written (and parses): the save finished."""
    try:
        json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(run_dir: Path) -> str | None:
    """Last complete checkpoint in `run_dir`, or None; rank 0 removes half-written ones."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(
        (p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()),
        key=_step,
    )
    complete = [p for p in found if is_complete(p)]
    for partial in (p for p in found if p not in complete):
        if int(os.environ.get("RANK", "0")) == 0:
            log.warning("removing %s: its save did not finish (job killed while saving)", partial)
            shutil.rmtree(partial, ignore_errors=True)
    if not complete:
        return None
    log.info("resuming from checkpoint %s", complete[-1])
    return str(complete[-1])


def _any_rank(flag: bool) -> bool:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)  # every rank stops at the same step
    return bool(value.item())


class StopOnSignal(TrainerCallback):
    """On SIGTERM/SIGUSR1 (SLURM time limit, preemption) save at the next step end and stop."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: int | None = None

    @classmethod
    def install(cls) -> StopOnSignal:
        """A callback whose handlers are installed for SIGNALS (call from the main thread)."""
        callback = cls()
        for sig in cls.SIGNALS:
            signal.signal(sig, callback._handle)
        return callback

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if _any_rank(self.received is not None):
            log.warning("signal received: saving checkpoint-%d and stopping", state.global_step)
            control.should_save = True
            control.should_training_stop = True
        return control
