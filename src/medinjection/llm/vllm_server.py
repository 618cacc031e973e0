"""A `vllm serve` process owned by one job: started on a local port, polled until ready, stopped.

Used by every stage whose endpoint is self-hosted: the LLM judge (backend vllm_server) and the
translation/synthesis endpoints that carry a `serve` block (llm.endpoints.<name>.serve): the rule's
job starts the server on its GPU node, the client talks to it like any OpenAI-compatible API, and
the server is stopped when the client closes, on success or failure alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PREFERRED_PORT = 18765  # fixed when free: the client's cache key includes the base URL
KEY_ENV = "MEDINJECTION_VLLM_KEY"  # the servers are started without --api-key
READY_TIMEOUT_S = 1800.0  # a 27B model can take many minutes to load and compile
# context the server is sized for unless the serve block says otherwise: a judge or translation
# prompt fits, and the model's own (128k+) context would only reserve KV-cache memory; a model
# whose max_position_embeddings is smaller needs its own value (vLLM refuses a larger one)
MAX_MODEL_LEN = 8192
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "max_concurrency": 64,
    "requests_per_minute": 1_000_000,
    "tokens_per_minute": 1_000_000_000,
    "max_retries": 3,
    "timeout_s": 600,
}


def pick_port(preferred: int = PREFERRED_PORT) -> int:
    """`preferred` when it is free on 127.0.0.1, else any free port (logged)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log.warning("port %d busy, vllm uses %d (cached responses will not be reused)", preferred, port)
    return port


def port_of(base_url: str, default: int = PREFERRED_PORT) -> int:
    """The port of a configured base URL (the preferred port of a server started for it)."""
    return urllib.parse.urlsplit(base_url).port or default


def vllm_command(
    model_path: Path,
    served_name: str,
    port: int,
    extra_args: Sequence[str] = (),
    executable: str = "vllm",
    max_model_len: int = MAX_MODEL_LEN,
) -> list[str]:
    """The `vllm serve` command line (extra_args appended, e.g. --tensor-parallel-size 2)."""
    return [
        executable, "serve", str(model_path),
        "--served-model-name", served_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--generation-config", "vllm",
        "--max-model-len", str(max_model_len),
        *extra_args,
    ]  # fmt: skip


def wait_until_ready(
    base_url: str,
    timeout_s: float,
    process: subprocess.Popen | None = None,
    poll_s: float = 2.0,
    served_name: str | None = None,
) -> None:
    """Poll `<base_url>/models` until it answers 200 (listing `served_name` when given); raise if
    the server dies or time runs out.

    The name check matters when another job's server holds the port: ours then dies on bind
    (and this raises) instead of this job talking to the other model.
    """
    deadline = time.monotonic() + timeout_s
    url = base_url.rstrip("/") + "/models"
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"vllm server exited with code {process.returncode} before it was ready; "
                "see its log"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local URL)
                served = [m.get("id") for m in json.loads(response.read()).get("data") or []]
                if response.status == 200 and served and served_name in (None, *served):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"vllm server at {url} not ready after {timeout_s:.0f} s")
        time.sleep(poll_s)


@contextlib.contextmanager
def serve_vllm(
    model_path: Path,
    served_name: str,
    log_path: Path,
    base_endpoint: Mapping[str, Any] | None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    preferred_port: int = PREFERRED_PORT,
    extra_args: Sequence[str] = (),
    executable: str = "vllm",
    max_model_len: int = MAX_MODEL_LEN,
) -> Iterator[dict[str, Any]]:
    """Run `vllm serve` for the block and yield its endpoint dict; the server is always stopped."""
    if not Path(model_path).is_dir():
        raise FileNotFoundError(
            f"vllm server: model directory {model_path} does not exist; stage the weights "
            "locally (the GPU nodes have no network)"
        )
    port = pick_port(preferred_port)
    command = vllm_command(
        Path(model_path), served_name, port, extra_args, executable, max_model_len
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting vllm server: %s (log %s)", " ".join(command), log_path)
    with open(log_path, "w", encoding="utf-8") as server_log:
        process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            wait_until_ready(base_url, ready_timeout_s, process, served_name=served_name)
            os.environ.setdefault(KEY_ENV, "EMPTY")
            extra = {
                k: v
                for k, v in (base_endpoint or {}).items()
                if k not in ("base_url", "api_key_env", "serve")
            }
            yield {**ENDPOINT_DEFAULTS, **extra, "base_url": base_url, "api_key_env": KEY_ENV}
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("vllm server stopped")


def served_endpoint(
    endpoint: Mapping[str, Any], log_path: Path
) -> contextlib.AbstractContextManager[dict[str, Any]]:
    """The server of an endpoint's `serve` block (llm.endpoints.<name>.serve), as a context."""
    serve = endpoint["serve"]
    return serve_vllm(
        Path(serve["model_path"]),
        serve["served_model_name"],
        log_path,
        endpoint,
        float(serve.get("ready_timeout_s", READY_TIMEOUT_S)),
        port_of(endpoint["base_url"]),
        tuple(serve.get("extra_args", ())),
        serve.get("executable", "vllm"),
        int(serve.get("max_model_len", MAX_MODEL_LEN)),
    )


def serve_options(serve: Mapping[str, Any] | None) -> dict[str, Any]:
    """`serve_vllm` keyword arguments of a judge candidate's `serve` block (all optional)."""
    serve = dict(serve or {})
    valid = ("executable", "extra_args", "max_model_len", "ready_timeout_s")
    unknown = sorted(set(serve) - set(valid))
    if unknown:
        raise ValueError(f"judge serve block: unknown key(s) {unknown}; valid: {list(valid)}")
    options: dict[str, Any] = {}
    if "executable" in serve:
        options["executable"] = str(serve["executable"])
    if "extra_args" in serve:
        options["extra_args"] = tuple(serve["extra_args"])
    if "max_model_len" in serve:
        options["max_model_len"] = int(serve["max_model_len"])
    if "ready_timeout_s" in serve:
        options["ready_timeout_s"] = float(serve["ready_timeout_s"])
    return options
