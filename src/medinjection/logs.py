"""Logging set-up shared by every rule adapter: one log file per job."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from pathlib import Path
from typing import Any


def setup_logging(path: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to the rule's log file (and stderr); returns the package logger."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    sys.excepthook = _log_uncaught
    return logging.getLogger("medinjection")


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    """Write an uncaught exception's traceback to the log handlers (the rule's log file too)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("medinjection").critical(
        "job failed: %s: %s", kind.__name__, error, exc_info=(kind, error, trace)
    )


NORMAL_EXIT_ENV = "MEDINJECTION_NORMAL_EXIT"  # "1": always the interpreter's own exit


def teardown_needed() -> str | None:
    """Why this process must end through the interpreter's normal exit, or None when it need not.

    os._exit skips atexit handlers, finalizers and the join of non-daemon threads; these matter
    under torchrun/DDP (the process group's teardown, every rank's), with child processes (a
    vLLM engine core, a multiprocessing pool: their shutdown runs in finalizers), with
    non-daemon threads still working, and for tools that write in atexit (coverage, profilers).
    """
    if os.environ.get(NORMAL_EXIT_ENV) == "1":
        return f"{NORMAL_EXIT_ENV}=1"
    world = os.environ.get("WORLD_SIZE", "1")
    if world != "1":
        return f"WORLD_SIZE={world} (torchrun/DDP)"
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return "torch.distributed process group initialised"
    children = multiprocessing.active_children()
    if children:
        return f"{len(children)} child process(es) alive: {[c.name for c in children]}"
    threads = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if threads:
        return f"non-daemon thread(s) alive: {threads}"
    return None


def exit_without_teardown() -> None:
    """End a job's process after its script succeeded, skipping the interpreter's teardown.

    Why: freeing the thousands of modules and objects of a torch/transformers/peft process costs
    0.6-2.5 CPU s per job and produces nothing (about 80 CPU s of the CI-scale rehearsal's ~660).

    Why it is safe: call it only as a job script's last statement, after main() returned (an
    exception never reaches it, so a failed job keeps its traceback and non-zero exit). By then
    the stage has written and closed every output (files are written inside `with` blocks or by
    writers closed before return, manifests last), so nothing is left in a buffer that a
    finalizer would flush; the log handlers are flushed and closed and the std streams flushed
    here; Snakemake checks the outputs after the process exits with status 0, as after a normal
    exit. Where skipping atexit handlers and finalizers could lose work (teardown_needed: DDP,
    child processes, non-daemon threads, MEDINJECTION_NORMAL_EXIT=1) it logs why and returns: the
    script then ends through the normal exit.
    """
    reason = teardown_needed()
    if reason is not None:
        logging.getLogger("medinjection").info("normal interpreter exit: %s", reason)
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(0)
