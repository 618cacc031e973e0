"""Prediction with transformers: batched greedy and constrained decoding with a shared prefill."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from medinjection.modeling.decoding import (
    AllowedTokens,
    LetterConstraint,
    LetterTokens,
    argmax_allowed,
    argmax_letter,
    check_protocol,
    letter_probabilities,
    letter_tokens,
    official_allowed_ids,
    separator_ids,
    stop_ids,
)
from medinjection.modeling.types import Prediction, PromptItem

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


def _given_ids(prompt_ids: Sequence[Sequence[int]] | None, n: int) -> list[Sequence[int]]:
    """The caller's prompt ids of `n` items (checked: one row per item), else []."""
    if prompt_ids is None:
        return []
    if len(prompt_ids) != n:
        raise ValueError(f"{len(prompt_ids)} rows of prompt ids for {n} items")
    return list(prompt_ids)


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


class PreallocatedLayer(DynamicLayer):
    """A KV cache layer with room for `extra` more tokens: a decode step writes its slot in place.

    transformers' DynamicLayer concatenates the whole cache at every step (the largest cost of a
    decode step with a small model); this one holds the keys/values in a buffer allocated once
    and exposes the filled part as a view, so the attention sees the same tensors.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, extra: int) -> None:
        super().__init__()
        batch, heads, length, dim = keys.shape
        self._keys = keys.new_empty((batch, heads, length + extra, dim))
        self._values = values.new_empty((batch, heads, length + extra, values.shape[-1]))
        self._keys[:, :, :length] = keys
        self._values[:, :, :length] = values
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self._fill(length)

    def _fill(self, length: int) -> None:
        self.keys, self.values = self._keys[:, :, :length], self._values[:, :, :length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new states after the filled part; the filled keys and values."""
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        if end > self._keys.shape[-2]:
            raise RuntimeError(f"KV buffer of {self._keys.shape[-2]} tokens cannot hold {end}")
        self._keys[:, :, start:end] = key_states
        self._values[:, :, start:end] = value_states
        self._fill(end)
        return self.keys, self.values


def preallocate(cache: Any, extra: int) -> Any:
    """The cache with each layer moved into a buffer with room for `extra` more tokens."""
    cache.layers = [PreallocatedLayer(layer.keys, layer.values, extra) for layer in cache.layers]
    return cache


class LastPositionLayer(torch.nn.Module):
    """The model's last decoder layer, computed at one position per row during a prefill.

    Only the last prompt position's output reaches the first-step logits, so in the last layer
    the other positions need their keys and values (for the cache, and for that position's
    attention) but not their query, attention output or MLP: about half of that layer's cost.
    `positions` (one index per row into the pass's tokens) switches this on for one forward
    call; with it unset the wrapped layer runs unchanged (decode steps, `generate`). The layer
    returns hidden states of shape (batch, 1, hidden). Written for Qwen3's layer (q/k norms).
    """

    def __init__(self, layer: Any) -> None:
        super().__init__()
        self.layer = layer
        self.positions: torch.Tensor | None = None

    @staticmethod
    def applies_to(layer: Any) -> bool:
        """Whether `layer` is a layer this wrapper knows how to split (Qwen3's decoder layer)."""
        return type(layer).__name__ == "Qwen3DecoderLayer"

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """The wrapped layer's output, at `positions` only when they are set."""
        if self.positions is None:
            return self.layer(
                hidden_states,
                attention_mask=attention_mask,
                position_embeddings=position_embeddings,
                past_key_values=past_key_values,
                **kwargs,
            )
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.models.qwen3.modeling_qwen3 import rotate_half

        def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            # Qwen3's apply_rotary_pos_emb for one tensor (queries and keys sit at different
            # positions here); cos/sin are (batch, tokens, head_dim)
            return x * cos[:, None] + rotate_half(x) * sin[:, None]

        layer, attn = self.layer, self.layer.self_attn
        batch, length, _ = hidden_states.shape
        rows = torch.arange(batch, device=hidden_states.device)
        pick = (rows, self.positions)
        normed = layer.input_layernorm(hidden_states)
        shape = (batch, length, -1, attn.head_dim)
        keys = attn.k_norm(attn.k_proj(normed).view(shape)).transpose(1, 2)
        values = attn.v_proj(normed).view(shape).transpose(1, 2)
        query = attn.q_norm(attn.q_proj(normed[pick][:, None]).view(batch, 1, -1, attn.head_dim))
        if position_embeddings is None:
            raise RuntimeError("the decoder layer got no position_embeddings (Qwen3 passes them)")
        cos, sin = position_embeddings
        keys = rotary(keys, cos, sin)
        query = rotary(query.transpose(1, 2), cos[pick][:, None], sin[pick][:, None])
        if past_key_values is not None:
            keys, values = past_key_values.update(keys, values, attn.layer_idx)
        # each row's query sees every key up to its own position (causal, no padding mask)
        before = keys.shape[2] - length
        seen = torch.arange(keys.shape[2], device=keys.device)[None, :]
        mask = (seen <= (before + self.positions)[:, None])[:, None, None, :]
        out, _ = sdpa_attention_forward(
            attn, query, keys, values, mask, dropout=0.0, scaling=attn.scaling
        )
        hidden = hidden_states[pick][:, None] + attn.o_proj(out.reshape(batch, 1, -1))
        return hidden + layer.mlp(layer.post_attention_layernorm(hidden))


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
    of those logits, the constrained one over the allowed set of `evaluation.protocol`); MCQ
    decodes greedy and constrained rows together from one duplicated cache.
    With a Qwen3 model the prefill's last layer is computed at each row's last position only
    (`LastPositionLayer`), and decode steps write into a preallocated cache (`preallocate`)
    under a 4D mask built once per batch: the same computation with less work, which the tests
    check against `generate` and against the unpruned model.
    """

    def __init__(
        self,
        model_dir: Path,
        adapter_dir: Path | None,
        batch_size: int,
        protocol: str = "official",
    ) -> None:
        self.protocol = check_protocol(protocol)
        self.model, self.tokenizer, self.device = load_for_inference(model_dir, adapter_dir)
        self.batch_size = batch_size
        self.stops = stop_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self.separators = separator_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.stops[0]
        self._letters: dict[tuple[str, ...], LetterTokens] = {}
        self._allowed: dict[tuple[str, ...], tuple[int, ...]] = {}
        layers = self.model.model.layers
        self.last_layer: LastPositionLayer | None = None
        if LastPositionLayer.applies_to(layers[-1]):
            self.last_layer = layers[-1] = LastPositionLayer(layers[-1])
        else:
            log.info("last-layer pruning not available for %s", type(layers[-1]).__name__)
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

    def allowed_ids(self, tokens: LetterTokens) -> tuple[int, ...]:
        """The official protocol's static allowed set of one option set (cached)."""
        if tokens.letters not in self._allowed:
            self._allowed[tokens.letters] = official_allowed_ids(self.tokenizer, tokens)
        return self._allowed[tokens.letters]

    def one_step_constrained(self, logits: Any, tokens: LetterTokens) -> str:
        """The MCQU constrained answer from first-step logits, under the protocol."""
        if self.protocol == "letters":
            return argmax_letter(logits, tokens)
        return self.decode([argmax_allowed(logits, self.allowed_ids(tokens))], 1)

    @torch.no_grad()
    def prefill(self, rows: Sequence[Sequence[int]], use_cache: bool) -> tuple[Any, ...]:
        """(first-step logits, KV cache or None, prompt mask, lengths) of right-padded prompts.

        The prompt head every row shares (with `v1` prompts the system turn and instruction, a
        third of a typical MCQ prompt; `official` prompts share little beyond the template's
        opening) is computed once and its KV cache broadcast to the batch, as vLLM's prefix
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
        positions = torch.arange(shared, width, device=self.device).expand(len(rows), -1)
        # causal over the shared head and the rows' own tokens, one mask for every row; built
        # here once rather than by transformers from the cache (no padding mask: see the class)
        causal = None
        if cache is not None:
            own = width - shared
            causal = torch.ones((own, width), dtype=torch.bool, device=self.device)
            causal = causal.tril(shared)[None, None]
        own_last = lengths - 1 - shared  # each row's last position in this pass
        if self.last_layer is not None:
            self.last_layer.positions, keep = own_last, 0
        else:  # logits only where some row ends, then each row's own last position
            keep = torch.unique(own_last)
        try:
            out = self.model(
                input_ids=ids[:, shared:],
                attention_mask=causal,
                position_ids=positions,
                past_key_values=cache,
                use_cache=use_cache or cache is not None,
                logits_to_keep=keep,
            )
        finally:
            if self.last_layer is not None:
                self.last_layer.positions = None
        column = torch.searchsorted(keep, own_last) if self.last_layer is None else 0
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
        rows, width = logits.shape[0], mask.shape[1]
        new = torch.empty((rows, 0), dtype=torch.long, device=self.device)
        done = torch.zeros(rows, dtype=torch.bool, device=self.device)
        stops = torch.tensor(self.stops, device=self.device)
        # the prompt mask then every new token, as a 4D mask sliced per step; the cache grows
        # in place (`preallocate`)
        full = torch.cat([mask.bool(), mask.new_ones((rows, budget), dtype=torch.bool)], dim=1)
        full = full[:, None, None, :]
        cache = preallocate(cache, budget) if budget > 1 else cache
        for step in range(budget):
            scores = processor(new, logits) if processor is not None else logits
            token = scores.argmax(dim=-1).masked_fill(done, self.pad_id)
            new = torch.cat([new, token[:, None]], dim=1)
            done |= torch.isin(token, stops)
            if step + 1 == budget or bool(done.all()):
                break
            out = self.model(
                input_ids=token[:, None],
                attention_mask=full[..., : width + step + 1],
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
        if self.protocol == "letters":
            constraint: Any = LetterConstraint(
                tokens, prompt_length=0, separators=self.separators, stops=self.stops
            )
        else:
            constraint = AllowedTokens([self.allowed_ids(t) for t in tokens])
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
        probs = [letter_probabilities(logits[i], t, self.protocol) for i, t in enumerate(tokens)]
        constrained_out: list[str | None] = [None] * len(items)
        if one_step:  # MCQU: one forward pass gives both answers
            greedy = [self.decode([token], 1) for token in logits.argmax(dim=-1).tolist()]
            if constrained:
                constrained_out = [
                    self.one_step_constrained(logits[i], t) for i, t in enumerate(tokens)
                ]
        elif constrained:
            greedy_ids, constrained_ids = self._multi_answer(prefill, tokens, max(budgets))
            greedy = self._texts(greedy_ids, budgets)
            constrained_out = list(self._texts(constrained_ids, budgets))
        else:
            greedy = self._texts(self.greedy_steps(*prefill, max(budgets)), budgets)
        return [Prediction(*f) for f in zip(greedy, constrained_out, probs, strict=True)]

    def batches(self, items: Sequence[PromptItem], ids: Sequence[Sequence[int]]) -> list[list[int]]:
        """Item indices in batches of one task and similar prompt length (less padding)."""
        order = sorted(range(len(items)), key=lambda i: (items[i].record.task, -len(ids[i]), i))
        out: list[list[int]] = []
        for index in order:
            last = out[-1] if out else None
            if (
                last is not None
                and items[last[0]].record.task == items[index].record.task
                and len(last) < self.batch_size
            ):
                last.append(index)
            else:
                out.append([index])
        return out

    def predict(
        self,
        items: Sequence[PromptItem],
        constrained: bool = True,
        prompt_ids: Sequence[Sequence[int]] | None = None,
    ) -> list[Prediction]:
        """Predictions in item order; items are batched by task and sorted by prompt length.
        `prompt_ids`: the items' `prompt_ids`, when the caller already has them (the predict
        stage tokenizes once, for the context check and for decoding)."""
        ids = _given_ids(prompt_ids, len(items)) or (self.prompt_ids(items) if items else [])
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
