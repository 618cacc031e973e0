"""A `vllm` module stand-in that runs requests on the model with transformers, as vLLM would.

It answers each (token-id prompt, SamplingParams) pair the way vLLM's engine does for the fields
the backend sends: greedy decoding (temperature 0) for `max_tokens` steps, `allowed_token_ids`
as a static mask at every step, a stop at any of the model's eos ids (the tokenizer's and the
generation config's, which vLLM adds to the stop ids) that is left out of the text, the text
detokenized without special tokens, and `logprobs` as the top-k processed (masked) log
probabilities of the first step. Structured outputs (the `letters` protocol's MCQ regex) are
refused: a test that needs them must use the real engine.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from medinjection.modeling.decoding import AllowedTokens


class SamplingParams:
    """Records the fields the backend sets (the real class validates them)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class EmulatedLLM:
    """vllm.LLM on transformers: one unpadded `generate` per request (`sent`: every
    (prompt, SamplingParams fields) pair received)."""

    sent: list[tuple[dict, dict]] = []

    def __init__(self, model: str, **engine_args: Any) -> None:
        self.engine_args = engine_args
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.stops = list(dict.fromkeys([self.tokenizer.eos_token_id, *eos]))

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    @torch.no_grad()
    def _one(self, prompt: dict, fields: dict) -> Any:
        if "structured_outputs" in fields:
            raise NotImplementedError("the emulator has no structured outputs: use real vLLM")
        ids = torch.tensor([prompt["prompt_token_ids"]])
        allowed = fields.get("allowed_token_ids")
        processors = LogitsProcessorList([AllowedTokens([allowed])] if allowed else [])
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=fields["max_tokens"],
            eos_token_id=self.stops,
            pad_token_id=self.stops[0],
            logits_processor=processors,
            output_scores=True,
            return_dict_in_generate=True,
        )
        # vLLM's token_ids end with the stop id it stopped at (left out of its text)
        new = token_ids = out.sequences[0, ids.shape[1] :].tolist()
        for position, token in enumerate(new):
            if token in self.stops:
                new, token_ids = new[:position], new[: position + 1]
                break
        logprobs = None
        if fields.get("logprobs"):
            first = torch.log_softmax(out.scores[0][0].float(), dim=-1)
            top = torch.topk(first, fields["logprobs"])
            logprobs = [
                {
                    int(i): types.SimpleNamespace(logprob=float(v))
                    for v, i in zip(top.values, top.indices, strict=True)
                }
            ]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        completion = types.SimpleNamespace(text=text, logprobs=logprobs, token_ids=token_ids)
        return types.SimpleNamespace(outputs=[completion])

    def generate(self, prompts, params, lora_request=None, use_tqdm=True) -> list[Any]:
        type(self).sent.extend((p, s.kwargs) for p, s in zip(prompts, params, strict=True))
        return [self._one(p, s.kwargs) for p, s in zip(prompts, params, strict=True)]


def install(monkeypatch: Any) -> None:
    """Put the emulator in sys.modules as `vllm` (with the submodules the backend imports)."""
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams, vllm.__version__ = EmulatedLLM, SamplingParams, "emulated"
    vllm.__file__ = str(Path(__file__))
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = SamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda *args: ("lora", *args)
    modules = {
        "vllm": vllm,
        "vllm.sampling_params": sampling,
        "vllm.lora": lora,
        "vllm.lora.request": request,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    EmulatedLLM.sent = []
