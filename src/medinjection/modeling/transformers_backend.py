"""Prediction with transformers: batched greedy and constrained decoding with a shared prefill."""

from __future__ import annotations

import logging
import time
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


# Shortest shared prompt head worth a separate pass (shorter ones are computed with each row).
MIN_SHARED_PREFIX = 16


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    limit = min(len(row) for row in rows) - 1
    first = rows[0]
    shared = 0
    while shared < limit and all(row[shared] == first[shared] for row in rows):
        shared += 1
    return shared


class OddRows:
    """Apply a logits processor to the odd rows only (rows 2i+1 of a duplicated batch)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Scores with the odd rows processed and the even rows untouched."""
        scores = scores.clone()
        scores[1::2] = self.processor(input_ids[1::2], scores[1::2])
        return scores


class TransformersPredictor:
    """Greedy + constrained decoding of prompt items with one loaded model.

    Batches hold items of one task, sorted by prompt length. Each batch's prompts go through one
    right-padded causal prefill (no padding mask: a causal model never attends to the pads after
    a row's last token, so every row sees exactly its unpadded computation); its first-step
    logits give the letter probabilities, and its KV cache feeds a greedy decode loop with a
    padding mask. MCQU needs nothing more (greedy and constrained answers are one-token argmaxes
    of those logits); MCQ decodes greedy and constrained rows together from one duplicated cache.
    """

    def __init__(self, model_dir: Path, adapter_dir: Path | None, batch_size: int) -> None:
        self.model, self.tokenizer, self.device = load_for_inference(model_dir, adapter_dir)
        self.batch_size = batch_size
        self.stops = stop_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self.separators = separator_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stops[0]
        self._letters: dict[tuple[str, ...], LetterTokens] = {}
        # seconds spent in the prefill pass and in the decode loops, over all batches
        self.timings: dict[str, float] = {"prefill": 0.0, "decode": 0.0}

    def prompt_ids(self, items: Sequence[PromptItem]) -> list[list[int]]:
        """Token ids of the chat-templated prompts (generation prompt appended)."""
        texts = [
            self.tokenizer.apply_chat_template(
                item.messages, tokenize=False, add_generation_prompt=True
            )
            for item in items
        ]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def letter_tokens(self, letters: tuple[str, ...]) -> LetterTokens:
        """Letter token ids of one option set (cached: test sets reuse a few sets)."""
        if letters not in self._letters:
            self._letters[letters] = letter_tokens(self.tokenizer, letters)
        return self._letters[letters]

    @torch.no_grad()
    def prefill(self, rows: Sequence[Sequence[int]], use_cache: bool) -> tuple[Any, ...]:
        """(first-step logits, KV cache or None, prompt mask, lengths) of right-padded prompts.

        The prompt head every row shares (system turn and instruction: a third of a typical
        MCQ prompt) is computed once and its KV cache broadcast to the batch, as vLLM's prefix
        caching does; then the rows' own tokens in one pass.
        """
        start = time.perf_counter()
        lengths = torch.tensor([len(row) for row in rows], device=self.device)
        if int(lengths.min()) < 1:
            raise ValueError("empty prompt: the chat template rendered no token")
        width, shared = int(lengths.max()), shared_prefix(rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        ids, cache = ids.to(self.device), None
        if len(rows) > 1 and shared >= MIN_SHARED_PREFIX:
            cache = self.model(input_ids=ids[:1, :shared], use_cache=True).past_key_values
            cache.batch_repeat_interleave(len(rows))
        else:
            shared = 0
        # logits only where some row ends, then each row's own last position
        last = torch.unique(lengths - 1 - shared)
        positions = torch.arange(shared, width, device=self.device).expand(len(rows), -1)
        out = self.model(
            input_ids=ids[:, shared:],
            position_ids=positions,
            past_key_values=cache,
            use_cache=use_cache or cache is not None,
            logits_to_keep=last,
        )
        column = torch.searchsorted(last, lengths - 1 - shared)
        logits = out.logits[torch.arange(len(rows), device=self.device), column].float()
        mask = (torch.arange(width, device=self.device)[None, :] < lengths[:, None]).long()
        self.timings["prefill"] += time.perf_counter() - start
        return logits, out.past_key_values if use_cache else None, mask, lengths

    @torch.no_grad()
    def greedy_steps(
        self,
        logits: Any,
        cache: Any,
        mask: Any,
        lengths: Any,
        budget: int,
        processor: Any | None = None,
    ) -> list[list[int]]:
        """Greedy decoding from a prefill (first-step `logits`): new token ids per row.

        As transformers' greedy `generate`: argmax of the (processed) scores, a finished row
        continues with the pad id, the loop stops when every row has produced a stop id.
        """
        start = time.perf_counter()
        rows = logits.shape[0]
        new = torch.empty((rows, 0), dtype=torch.long, device=self.device)
        done = torch.zeros(rows, dtype=torch.bool, device=self.device)
        stops = torch.tensor(self.stops, device=self.device)
        for step in range(budget):
            scores = processor(new, logits) if processor is not None else logits
            token = scores.argmax(dim=-1).masked_fill(done, self.pad_id)
            new = torch.cat([new, token[:, None]], dim=1)
            done |= torch.isin(token, stops)
            if step + 1 == budget or bool(done.all()):
                break
            mask = torch.cat([mask, mask.new_ones((rows, 1))], dim=1)
            out = self.model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=(lengths + step)[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            logits, cache = out.logits[:, -1, :].float(), out.past_key_values
        self.timings["decode"] += time.perf_counter() - start
        return new.tolist()

    def decode(self, ids: Sequence[int], budget: int) -> str:
        """Text of the first `budget` new tokens, cut at the first stop token."""
        ids = list(ids[:budget])
        for position, token in enumerate(ids):
            if token in self.stops:
                ids = ids[:position]
                break
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _texts(self, rows: Sequence[Sequence[int]], budgets: Sequence[int]) -> list[str]:
        return [self.decode(ids, b) for ids, b in zip(rows, budgets, strict=True)]

    def _multi_answer(self, prefill: tuple[Any, ...], tokens: list[LetterTokens], budget: int):
        """Greedy and constrained token ids of MCQ rows, decoded together (rows 2i, 2i+1)."""
        logits, cache, mask, lengths = prefill
        cache.batch_repeat_interleave(2)
        constraint = LetterConstraint(
            tokens, prompt_length=0, separators=self.separators, stops=self.stops
        )
        ids = self.greedy_steps(
            logits.repeat_interleave(2, dim=0),
            cache,
            mask.repeat_interleave(2, dim=0),
            lengths.repeat_interleave(2, dim=0),
            budget,
            OddRows(constraint),
        )
        return ids[0::2], ids[1::2]

    def predict_batch(
        self, items: Sequence[PromptItem], rows: Any = None, constrained: bool = True
    ) -> list[Prediction]:
        """Predictions for one batch of items of the same task (`rows`: their prompt ids).

        `constrained=False` skips the constrained run (its outputs are None): the greedy-only
        cost, for benchmarks.
        """
        task = items[0].record.task
        rows = rows if rows is not None else self.prompt_ids(items)
        budgets = [item.max_new_tokens for item in items]
        one_step = max(budgets) == 1
        prefill = self.prefill(rows, use_cache=not one_step)
        logits = prefill[0]
        if task == "oeq":
            greedy = self._texts(self.greedy_steps(*prefill, max(budgets)), budgets)
            return [Prediction(text, None, None) for text in greedy]
        tokens = [self.letter_tokens(item.letters) for item in items]
        probs = [letter_probabilities(logits[i], t) for i, t in enumerate(tokens)]
        constrained_out: list[str | None] = [None] * len(items)
        if one_step:  # MCQU: one forward pass gives both answers
            greedy = [self.decode([token], 1) for token in logits.argmax(dim=-1).tolist()]
            if constrained:
                constrained_out = [argmax_letter(logits[i], t) for i, t in enumerate(tokens)]
        elif constrained:
            greedy_ids, constrained_ids = self._multi_answer(prefill, tokens, max(budgets))
            greedy = self._texts(greedy_ids, budgets)
            constrained_out = list(self._texts(constrained_ids, budgets))
        else:
            greedy = self._texts(self.greedy_steps(*prefill, max(budgets)), budgets)
        return [Prediction(*f) for f in zip(greedy, constrained_out, probs, strict=True)]

    def batches(self, items: Sequence[PromptItem], ids: list[list[int]]) -> list[list[int]]:
        """Item indices in batches of one task and similar prompt length (less padding)."""
        order = sorted(range(len(items)), key=lambda i: (items[i].record.task, -len(ids[i]), i))
        out: list[list[int]] = []
        for index in order:
            last = out[-1] if out else None
            same_task = last is not None and items[last[0]].record.task == items[index].record.task
            if same_task and len(last) < self.batch_size:
                last.append(index)
            else:
                out.append([index])
        return out

    def predict(self, items: Sequence[PromptItem], constrained: bool = True) -> list[Prediction]:
        """Predictions in item order; items are batched by task and sorted by prompt length."""
        ids = self.prompt_ids(items) if items else []
        results: list[Prediction | None] = [None] * len(items)
        done = 0
        for chunk in self.batches(items, ids):
            batch = [items[i] for i in chunk]
            preds = self.predict_batch(batch, [ids[i] for i in chunk], constrained)
            for index, pred in zip(chunk, preds, strict=True):
                results[index] = pred
            done += len(chunk)
            log.info("predicted %d/%d items", done, len(items))
        return [pred for pred in results if pred is not None]
