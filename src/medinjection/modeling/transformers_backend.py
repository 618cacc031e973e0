"""Prediction with transformers: batched, left-padded greedy and constrained decoding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medinjection.modeling.decoding import (
    LetterConstraint,
    LetterTokens,
    argmax_letter,
    letter_probabilities,
    letter_tokens,
    separator_ids,
    stop_ids,
)
from medinjection.modeling.predict import Prediction, PromptItem

log = logging.getLogger(__name__)


def load_for_inference(model_dir: Path, adapter_dir: Path | None) -> tuple[Any, Any, Any]:
    """(model in eval mode, left-padding tokenizer, device); an adapter is merged for speed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.to(device).eval()
    return model, tokenizer, device


class TransformersPredictor:
    """Greedy + constrained decoding of prompt items with one loaded model."""

    def __init__(self, model_dir: Path, adapter_dir: Path | None, batch_size: int) -> None:
        self.model, self.tokenizer, self.device = load_for_inference(model_dir, adapter_dir)
        self.batch_size = batch_size
        self.stops = stop_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self.separators = separator_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stops[0]

    def encode(self, items: Sequence[PromptItem]) -> dict[str, Any]:
        """Left-padded input ids of the chat-templated prompts (generation prompt appended)."""
        texts = [
            self.tokenizer.apply_chat_template(
                item.messages, tokenize=False, add_generation_prompt=True
            )
            for item in items
        ]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {key: enc[key].to(self.device) for key in ("input_ids", "attention_mask")}

    @torch.no_grad()
    def first_step_logits(self, enc: dict[str, Any]) -> Any:
        """Next-token logits after each prompt: one forward pass, positions as in generate."""
        mask = enc["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
        out = self.model(**enc, position_ids=positions, logits_to_keep=1)
        return out.logits[:, -1, :].float()

    @torch.no_grad()
    def generate(
        self, enc: dict[str, Any], max_new_tokens: int, processor: Any | None = None
    ) -> list[list[int]]:
        """Greedy generation (optionally constrained); returns the new token ids per row."""
        from transformers import GenerationConfig, LogitsProcessorList

        config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=list(self.stops),
            pad_token_id=self.pad_id,
        )
        out = self.model.generate(
            **enc,
            generation_config=config,
            logits_processor=LogitsProcessorList([processor]) if processor else None,
        )
        return out[:, enc["input_ids"].shape[1] :].tolist()

    def constrained_generate(
        self,
        enc: dict[str, Any],
        tokens: Sequence[LetterTokens],
        max_new_tokens: int,
        multi: bool,
    ) -> list[list[int]]:
        """Generate under the letter constraint (multi: separators and stop ids also allowed)."""
        processor = LetterConstraint(
            tokens,
            prompt_length=enc["input_ids"].shape[1],
            separators=self.separators if multi else (),
            stops=self.stops if multi else (),
        )
        return self.generate(enc, max_new_tokens, processor)

    def decode(self, ids: Sequence[int], budget: int) -> str:
        """Text of the first `budget` new tokens, cut at the first stop token."""
        ids = list(ids[:budget])
        for position, token in enumerate(ids):
            if token in self.stops:
                ids = ids[:position]
                break
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def predict_batch(self, items: Sequence[PromptItem]) -> list[Prediction]:
        """Predictions for one batch of items of the same task."""
        task = items[0].record.task
        enc = self.encode(items)
        budgets = [item.max_new_tokens for item in items]
        greedy_ids = self.generate(enc, max(budgets))
        greedy = [self.decode(ids, b) for ids, b in zip(greedy_ids, budgets, strict=True)]
        if task == "oeq":
            return [Prediction(text, None, None) for text in greedy]
        tokens = [letter_tokens(self.tokenizer, item.letters) for item in items]
        logits = self.first_step_logits(enc)
        probs = [letter_probabilities(logits[i], t) for i, t in enumerate(tokens)]
        if task == "mcqu":
            constrained = [argmax_letter(logits[i], t) for i, t in enumerate(tokens)]
        else:
            ids = self.constrained_generate(enc, tokens, max(budgets), multi=True)
            constrained = [self.decode(row, b) for row, b in zip(ids, budgets, strict=True)]
        return [Prediction(*fields) for fields in zip(greedy, constrained, probs, strict=True)]

    def predict(self, items: Sequence[PromptItem]) -> list[Prediction]:
        """Predictions in item order, batching items of the same task together."""
        results: list[Prediction | None] = [None] * len(items)
        by_task: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            by_task.setdefault(item.record.task, []).append(index)
        done = 0
        for indices in by_task.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, pred in zip(
                    chunk, self.predict_batch([items[i] for i in chunk]), strict=True
                ):
                    results[index] = pred
                done += len(chunk)
                log.info("predicted %d/%d items", done, len(items))
        return [pred for pred in results if pred is not None]
