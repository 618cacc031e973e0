"""Prediction with vLLM (GPU): greedy, structured-output constrained, and letter probabilities.

DoRA adapters are refused by vLLM; the workflow serves a merged model for them (adapter None).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medinjection.modeling.decoding import letter_tokens, multi_answer_regex
from medinjection.modeling.predict import Prediction, PromptItem

log = logging.getLogger(__name__)

VLLM_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def _import_vllm() -> Any:
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


class VllmPredictor:
    """One vLLM engine; three request kinds per multiple-choice item, one per open question."""

    def __init__(self, model_dir: Path, adapter_dir: Path | None) -> None:
        vllm = _import_vllm()
        from vllm.lora.request import LoRARequest

        engine_args: dict[str, Any] = {"seed": 0, "logprobs_mode": "processed_logprobs"}
        self.lora = None
        if adapter_dir is not None:
            rank = adapter_rank(adapter_dir)
            engine_args.update(enable_lora=True, max_lora_rank=max_lora_rank(rank), max_loras=1)
            self.lora = LoRARequest("adapter", 1, str(adapter_dir))
        # processed_logprobs: logprobs after allowed_token_ids masking = softmax over letters
        self.llm = vllm.LLM(model=str(model_dir), **engine_args)
        self.tokenizer = self.llm.get_tokenizer()

    def _prompts(self, items: Sequence[PromptItem]) -> list[str]:
        return [
            self.tokenizer.apply_chat_template(
                item.messages, tokenize=False, add_generation_prompt=True
            )
            for item in items
        ]

    def _run(self, prompts: list[str], params: list[Any]) -> list[Any]:
        outputs = self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=True)
        return [out.outputs[0] for out in outputs]

    def predict(self, items: Sequence[PromptItem]) -> list[Prediction]:
        """Predictions in item order."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        prompts = self._prompts(items)
        greedy = self._run(
            prompts, [SamplingParams(temperature=0.0, max_tokens=i.max_new_tokens) for i in items]
        )
        mc = [k for k, item in enumerate(items) if item.record.task != "oeq"]
        constrained, probs = {}, {}
        if mc:
            params = [
                _constrained_params(items[k], SamplingParams, StructuredOutputsParams) for k in mc
            ]
            outs = self._run([prompts[k] for k in mc], params)
            constrained = {k: out.text.strip() for k, out in zip(mc, outs, strict=True)}
            probs = self._letter_probs([items[k] for k in mc], [prompts[k] for k in mc], mc)
        log.info("vLLM predicted %d items (%d multiple choice)", len(items), len(mc))
        return [
            Prediction(out.text.strip(), constrained.get(k), probs.get(k))
            for k, out in enumerate(greedy)
        ]

    def _letter_probs(
        self, items: Sequence[PromptItem], prompts: list[str], keys: list[int]
    ) -> dict[int, dict[str, float]]:
        from vllm import SamplingParams

        tokens = [letter_tokens(self.tokenizer, item.letters) for item in items]
        params = [
            SamplingParams(
                temperature=0.0, max_tokens=1, allowed_token_ids=list(t.bare), logprobs=len(t.bare)
            )
            for t in tokens
        ]
        outs = self._run(prompts, params)
        return {k: _softmax_letters(out, t) for k, out, t in zip(keys, outs, tokens, strict=True)}


def _constrained_params(item: PromptItem, sampling_params: Any, structured: Any) -> Any:
    if item.record.task == "mcqu":
        constraint = structured(choice=list(item.letters))
    else:
        constraint = structured(regex=multi_answer_regex(item.letters))
    return sampling_params(
        temperature=0.0, max_tokens=item.max_new_tokens, structured_outputs=constraint
    )


def _softmax_letters(output: Any, tokens: Any) -> dict[str, float]:
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
