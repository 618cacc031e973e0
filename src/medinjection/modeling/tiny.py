"""A tiny randomly initialised Qwen3 model and its byte-level BPE tokenizer, built offline."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medinjection.prompts import TEMPLATES
from medinjection.records import LETTERS

log = logging.getLogger(__name__)

EOT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (EOT, IM_START, IM_END)

# Qwen2/Qwen3 pre-tokenizer regex: letters keep one leading non-letter (" C", "(A"), digits split.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen-style ChatML (<|im_start|>role\ncontent<|im_end|>\n); the generation prompt opens
# the assistant turn.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Answer-format text mixed into the tokenizer corpus so that " A".." J" become single tokens:
# at least 200 lines, and one per 20 corpus texts, so that the letters keep their weight in a
# large corpus (200 lines left " J" split in a 4096-token vocabulary twice: the full-scale study
# rehearsal's 3,010,018 texts, and the released data's 3.6M texts, which carry options A-E only;
# one line per 32 texts fixed the first, one per 20 the second).
_LETTER_SEED_REPEATS = 200
_LETTER_SEED_TEXTS_PER_LINE = 20


def letter_seed_repeats(n_texts: int) -> int:
    """How many answer-format seed lines a corpus of `n_texts` texts gets."""
    return max(_LETTER_SEED_REPEATS, n_texts // _LETTER_SEED_TEXTS_PER_LINE)


TEXT_COLUMNS: tuple[str, ...] = ("context", "question", "answer")


@dataclass(frozen=True)
class TinySpec:
    """Geometry of the tiny Qwen3 model (config key `base_model.tiny`)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    seed: int
    # std of the random initial weights (transformers' default 0.02). At 0.02 a 2-layer random
    # model's last-position logits hardly depend on the prompt: every judge verdict and every
    # constrained answer comes out the same; the demo uses a larger one (config/demo.yaml)
    initializer_range: float = 0.02

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TinySpec:
        """Spec from the config dict; missing or unknown keys raise an error naming them."""
        expected = set(cls.__dataclass_fields__)
        required = expected - {"initializer_range"}
        missing, unknown = sorted(required - set(values)), sorted(set(values) - expected)
        if missing or unknown:
            raise ValueError(
                f"base_model.tiny: missing keys {missing}, unknown keys {unknown}; "
                f"expected {sorted(required)} and optionally initializer_range"
            )
        spec = {key: int(values[key]) for key in required}
        return cls(**spec, initializer_range=float(values.get("initializer_range", 0.02)))


def corpus_texts(files: Sequence[Path]) -> Iterator[str]:
    """Text of records parquet (context/question/options/answer) or documents parquet (text)."""
    for path in files:
        table = pq.read_table(path)
        names = set(table.column_names)
        if "text" in names:
            yield from (text for text in table.column("text").to_pylist() if text)
        elif {"question", "answer"} <= names:
            yield from _record_texts(table.to_pylist())
        else:
            raise ValueError(
                f"{path}: corpus file has columns {sorted(names)}; expected a records parquet "
                "(question/options/answer/context) or a documents parquet (text)"
            )


def _record_texts(rows: list[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield from (row[column] for column in TEXT_COLUMNS if row.get(column))
        for option in row.get("options") or ():
            yield f"({option['letter']}) {option['text']}"


def seed_texts(n_texts: int = 0) -> list[str]:
    """Fixed text every prompt contains: answer-style letter lines (as many as
    `letter_seed_repeats(n_texts)`), chat roles, template strings."""
    line = ", ".join(LETTERS * 2)  # 'A, B, ..., J, A': letters with and without a leading space
    fixed = ["system", "user", "assistant"]
    for template in TEMPLATES.values():
        fixed.extend(value for value in vars(template).values() if isinstance(value, str))
    return [line] * letter_seed_repeats(n_texts) + fixed


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """Byte-level BPE (Qwen pre-tokenizer) wrapped as a left-padding PreTrainedTokenizerFast."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*texts, *seed_texts(len(texts))], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=EOT,
        additional_special_tokens=[IM_START],
        padding_side="left",
        model_max_length=1 << 20,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    check_single_tokens(fast)
    return fast


def check_single_tokens(tokenizer: Any) -> None:
    """Raise unless each option letter, with and without a leading space, is one token."""
    bad = [
        text
        for letter in LETTERS
        for text in (letter, f" {letter}")
        if len(tokenizer.encode(text, add_special_tokens=False)) != 1
    ]
    if bad:
        raise ValueError(
            f"tiny tokenizer splits option letters {bad!r} into several tokens; "
            "raise base_model.tiny.vocab_size"
        )


def build_tiny_model(spec: TinySpec, tokenizer: Any) -> Any:
    """Randomly initialised Qwen3ForCausalLM (seeded) matching the tokenizer's special tokens."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        initializer_range=spec.initializer_range,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(EOT),
    )
    torch.manual_seed(spec.seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        do_sample=False,
        eos_token_id=[config.eos_token_id, config.pad_token_id],
        pad_token_id=config.pad_token_id,
    )
    return model


def build_tiny(spec: TinySpec, corpus_files: Sequence[Path], out_dir: Path) -> None:
    """Train the tokenizer on the corpus, build the model, save both to `out_dir`."""
    texts = list(corpus_texts(corpus_files))
    if not texts:
        raise ValueError(f"no text in tokenizer corpus files {[str(p) for p in corpus_files]}")
    log.info("training a %d-token BPE tokenizer on %d texts", spec.vocab_size, len(texts))
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = build_tiny_model(spec, tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen3: %d parameters, vocab %d", n_params, len(tokenizer))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
