"""LLM-as-a-judge for open answers: the binary equivalence prompt, the local judge, the verdicts.

The system prompt is the text of `judge.prompt_file`, used verbatim (one final newline, which
editors add, is dropped). The shipped file, config/prompts/judge_equivalence_paraphrase.txt, is this
project's paraphrase of the authors' prompt (LLM-as-a-judge.py), not their wording, which cannot
ship here; `JUDGE_SYSTEM_PROMPT` is the same text, the default when no file is given.

The backends (`medinjection.stages.judge.JUDGE_BACKENDS`) each give a chat function, a list of
conversations -> reply texts; this module holds none of the LLM client (the stage wires it in):
- ``local`` (`local_replies`): a transformers causal LM directory; one forward pass per
  left-padded batch, the verdict is the argmax over the two tokens "0" and "1" (the authors decode
  one token greedily over the whole vocabulary; restricting it to the two digits makes every
  verdict parsable, a difference listed in docs/deviations.md).
- ``openai``: any OpenAI-compatible server through the project's client (`medinjection.llm.chat`).
- ``vllm_server``: ``vllm serve`` started on a free local port for the job, queried as the
  openai backend, and always stopped.

Scores: first match of ``\\b[01]\\b`` in the raw reply, else of ``[01]``; a reply without either
scores None ("unparsable"): it is kept as null in the judgment files, counted as 0 in means, and
its count is reported next to the mean. A request the API refused (HTTP 400/422: content filter,
too long) also scores None, with the API's message in the `error` column: scoring counts such
items apart and treats them as `judge.refused` says (0, or stop the run).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
# a judge's chat function: the conversations -> its reply texts, in order (a reply the API refused
# is an empty string carrying `.error`, medinjection.llm.chat.Refused)
Chat = Callable[[list[Messages]], list[str]]
# a judge ready to run: the conversations -> (score, raw reply) each (`judge_verdicts`)
JudgeFn = Callable[[Sequence[Messages]], list[tuple[float | None, str]]]

JUDGE_PROMPT_VERSION = "equivalence-v1"
# A paraphrase of the authors' judge prompt (same scores, criteria and output rule; not their text)
JUDGE_SYSTEM_PROMPT = (
    "You are a medical evaluator. Your task is to decide whether a candidate answer is "
    "equivalent to the ground truth answer of a medical question.\n"
    "Score strictly with the criteria below and reply with the score only: no explanation, "
    "no comment, no other text.\n\n"
    "Scores:\n"
    "0 = not equivalent\n"
    "1 = equivalent\n\n"
    "Equivalence: the candidate answer is equivalent when it covers the essential information "
    "expected by the ground truth. Different wording, and extra or missing minor details, are "
    "acceptable as long as the candidate answer would still be accepted as a correct answer to "
    "the question.\n\n"
    "Reply with the single digit 0 or 1."
)
JUDGMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("score", pa.float64()),
        ("raw", pa.string()),
        ("judge", pa.string()),
        ("error", pa.string()),  # the API's refusal message; null when the judge answered
    ]
)
LOCAL_BATCH_SIZE = 4  # the authors' judge batch size


def judge_messages(
    question: str, candidate: str, gold: str, system_prompt: str = JUDGE_SYSTEM_PROMPT
) -> Messages:
    """System + user messages of one judgment, in the authors' field order."""
    user = f"Question: {question}\nCandidate_answer: {candidate}\nGround_truth: {gold}"
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def load_judge_prompt(path: Path | str | None) -> str:
    """The judge's system prompt: the file's text verbatim (less one final newline), or the
    shipped paraphrase when `path` is None."""
    if path is None:
        return JUDGE_SYSTEM_PROMPT
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"judge.prompt_file {path} does not exist; point it at a UTF-8 text file holding the "
            "judge's system prompt (config/prompts/judge_equivalence_paraphrase.txt is the default)"
        )
    text = path.read_text(encoding="utf-8")
    text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not text.strip():
        raise ValueError(f"judge.prompt_file {path} is empty; write the judge's system prompt")
    return text


def prompt_sha256(text: str) -> str:
    """Hex digest of a judge prompt (recorded with the scores)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_judge_output(raw: str | None) -> float | None:
    """1.0/0.0 from the first standalone 0/1 (else any 0/1) in a reply; None when there is none."""
    if raw is None:
        return None
    match = re.search(r"\b[01]\b", raw) or re.search(r"[01]", raw)
    return float(match.group(0)) if match else None


BASE_MODEL = "base"  # judge model name that means results/models/base (the rule's model input)


def uses_base_model(backend: str, judge_model: str) -> bool:
    """Whether a judge runs the workflow's base model directory (rule input `model`)."""
    return backend == "local" or (backend == "vllm_server" and judge_model == BASE_MODEL)


def _digit_token_ids(tokenizer: Any, model_dir: Path) -> tuple[int, int]:
    ids = [tokenizer.encode(d, add_special_tokens=False) for d in ("0", "1")]
    if any(len(i) != 1 for i in ids) or ids[0] == ids[1]:
        raise ValueError(
            f"judge model {model_dir}: '0'/'1' are not two distinct single tokens ({ids}); "
            "the local backend needs them, use backend openai/vllm_server for this model"
        )
    return ids[0][0], ids[1][0]


@dataclass(frozen=True)
class LocalJudge:
    """A loaded local judge: model, left-padding tokenizer, and the ids of the tokens "0"/"1"."""

    model: Any
    tokenizer: Any
    digit_ids: tuple[int, int]


def load_local_judge(model_dir: Path | None) -> LocalJudge:
    """Load a transformers causal LM directory as a judge (bf16 on Ampere+ GPUs, fp32 on CPU)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_dir is None or not Path(model_dir).is_dir():
        raise FileNotFoundError(f"judge backend local needs a model directory, got {model_dir}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"  # the last position must be the real last prompt token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.get_device_capability()[0] >= 8 else None
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.to("cuda" if cuda else "cpu").eval()
    return LocalJudge(model, tokenizer, _digit_token_ids(tokenizer, Path(model_dir)))


def digit_logits(judge: LocalJudge, batch: Sequence[Messages]) -> Any:
    """Next-token logits of "0" and "1" after each conversation's generation prompt (B x 2)."""
    import torch

    texts = [
        judge.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
        for m in batch
    ]
    enc = judge.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = enc.to(judge.model.device)
    # left padding: positions must restart at the first real token, as generate() does
    positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = judge.model(**enc, position_ids=positions).logits[:, -1, :]
    return logits[:, list(judge.digit_ids)].float().cpu()


def local_replies(messages: Sequence[Messages], model_dir: Path | None) -> list[str]:
    """Verdicts of a local causal LM: argmax over the tokens '0'/'1' after the generation prompt
    (one constrained step: a candidate's max_tokens does not apply)."""
    judge = load_local_judge(model_dir)
    out: list[str] = []
    for start in range(0, len(messages), LOCAL_BATCH_SIZE):
        picks = digit_logits(judge, messages[start : start + LOCAL_BATCH_SIZE]).argmax(dim=-1)
        out.extend("1" if p == 1 else "0" for p in picks.tolist())
        if (start // LOCAL_BATCH_SIZE) % 25 == 0:
            log.info("local judge: %d/%d items", len(out), len(messages))
    return out


def judge_verdicts(
    raws: Sequence[str], expected: int, backend: str
) -> list[tuple[float | None, str]]:
    """(score, raw reply) for each of `expected` judgments; unparsable and refused replies are
    counted and logged (both score None)."""
    if len(raws) != expected:
        raise RuntimeError(
            f"judge backend {backend} returned {len(raws)} replies for {expected} prompts"
        )
    # a Refused reply is kept as is (falsy, but it carries the API's error)
    results = [(parse_judge_output(raw), raw if raw is not None else "") for raw in raws]
    refused = [error for raw in raws if (error := getattr(raw, "error", None)) is not None]
    bad = sum(score is None for score, _ in results) - len(refused)
    if bad:
        log.warning("judge: %d of %d replies unparsable (scored null, 0 in means)", bad, len(raws))
    if refused:
        log.warning(
            "judge: %d of %d requests refused by the API (error kept; scored as judge.refused "
            "says), first: %s",
            len(refused),
            len(raws),
            refused[0],
        )
    return results
