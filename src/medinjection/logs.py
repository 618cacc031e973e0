"""Logging set-up shared by every rule adapter: one log file per job."""

from __future__ import annotations

import logging
import sys
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
