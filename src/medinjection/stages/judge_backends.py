"""The judge backends of workflow/rules/judge.smk's stages (stages/judge.py): a candidate judge
as a job runs it (`JudgeRun`) and its chat function, the local model or the LLM client.

Kept apart from stages/judge.py so that running a judge imports neither the meta-evaluation's
statistics (scipy) nor, for the local backend, the LLM client: the vLLM venv, which has neither
scipy nor the workflow's metrics, runs `run_judge` in tests/modeling/test_vllm_engine.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medinjection.evaluation.judge import Chat, Messages, judge_verdicts, local_replies
from medinjection.settings import EndpointSettings, JudgeCandidateSettings

log = logging.getLogger(__name__)

DEFAULT_CACHE = "results/llm_cache/judge.sqlite"


@dataclass(frozen=True)
class JudgeRun:
    """One candidate judge as a job runs it: its settings, the endpoint of an openai candidate
    (llm.endpoints.<candidate.endpoint>), the llm mode and replay file, and its response cache."""

    candidate: JudgeCandidateSettings
    endpoint: EndpointSettings | None = None
    mode: str = "live"
    replay_file: str | None = None
    cache_path: str = DEFAULT_CACHE


@contextlib.contextmanager
def _local_chat(run: JudgeRun, model_dir: Path | None) -> Iterator[Chat]:
    yield functools.partial(local_replies, model_dir=model_dir)


@contextlib.contextmanager
def _openai_chat(run: JudgeRun, model_dir: Path | None) -> Iterator[Chat]:
    """Replies of an OpenAI-compatible endpoint (the project's cached, replayable client)."""
    if run.endpoint is None:
        raise ValueError("judge backend openai needs an endpoint (the llm.endpoints entry)")
    from medinjection.llm.chat import make_chat_fn  # openai is imported by the jobs that use it

    chat = make_chat_fn(
        endpoint=run.endpoint.to_dict(),
        model=run.candidate.model,
        mode=run.mode,
        replay_file=run.replay_file,
        cache_path=run.cache_path,
        max_tokens=run.candidate.max_tokens,
        temperature=0.0,
    )
    with contextlib.closing(chat):
        yield chat


@contextlib.contextmanager
def _vllm_server_chat(run: JudgeRun, model_dir: Path | None) -> Iterator[Chat]:
    """Replies of a `vllm serve` judge started for this job and stopped afterwards.

    The server is started here, so its replies are always live (llm.mode is ignored; replaying a
    recorded judge is what backend 'openai' is for); the response cache still applies.
    """
    from medinjection.llm.chat import served_chat_fn
    from medinjection.llm.vllm_server import serve_options

    if run.mode != "live":
        log.info(
            "judge backend vllm_server: llm.mode %r ignored, querying the server live", run.mode
        )
    serve = run.candidate.serve
    chat = served_chat_fn(
        model_path=Path(model_dir) if model_dir is not None else Path(run.candidate.model),
        served_name=run.candidate.model,
        log_path=Path(run.cache_path).parent / "vllm_judge_server.log",
        cache_path=run.cache_path,
        max_tokens=run.candidate.max_tokens,
        serve_options=serve_options(serve.to_dict() if serve is not None else None),
        base_endpoint=run.endpoint.to_dict() if run.endpoint is not None else None,
    )
    with contextlib.closing(chat):
        yield chat


# backend -> the chat function of a JudgeRun (on the base model directory, when it uses it),
# open for the `with` block
JUDGE_BACKENDS: dict[
    str, Callable[[JudgeRun, Path | None], contextlib.AbstractContextManager[Chat]]
] = {
    "local": _local_chat,
    "openai": _openai_chat,
    "vllm_server": _vllm_server_chat,
}


def run_judge(
    messages: Sequence[Messages], run: JudgeRun, model_dir: Path | None
) -> list[tuple[float | None, str]]:
    """(score, raw reply) for each judgment, with the candidate's backend (one chat function,
    opened and closed here: one client and at most one server for all the messages)."""
    backend = run.candidate.backend
    if backend not in JUDGE_BACKENDS:
        raise KeyError(f"judge backend {backend!r} unknown; valid: {sorted(JUDGE_BACKENDS)}")
    if not messages:
        return []
    log.info("judging %d items with %s (%s)", len(messages), run.candidate.model, backend)
    with JUDGE_BACKENDS[backend](run, model_dir) as chat:
        raws = chat([list(m) for m in messages])
    return judge_verdicts(raws, len(messages), backend)
