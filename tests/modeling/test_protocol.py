"""evaluation.protocol: constrained decoding on constructed logits, parser and EM on its outputs,
and the two backends' answers item by item on the tiny model under each protocol."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from medinjection.evaluation.parsing import normalize_gold, parse_letters
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
    official_separator_ids,
    official_stop_ids,
)
from medinjection.modeling.transformers_backend import TransformersPredictor
from medinjection.records import read_records, write_records
from medinjection.settings import TinyModelSettings
from medinjection.stages.predict import prompt_items
from medinjection.stages.train import prepare_base_model
from tests.support import vllm_emulator
from tests.support.predict import predict_testsets
from tests.support.tiny_spec import vllm_tiny_spec

# A constructed vocabulary: ids 0-9, what each spells (bare and spaced letters, separators, stops)
VOCAB = {0: "", 1: "<|im_end|>", 2: ",", 3: " ", 4: "A", 5: "B", 6: "C", 7: " A", 8: " B", 9: "x"}
STOPS = (1,)
TOKENS = LetterTokens(letters=("A", "B", "C"), bare=(4, 5, 6), variants=((4, 7), (5, 8), (6,)))
OFFICIAL = (1, 2, 3, 4, 5, 6, 7, 8)  # letters + separators + stop, sorted


def _logits(order: list[int]) -> torch.Tensor:
    """Logits ranking the ids of `order` first (highest first); every other id below."""
    logits = torch.full((len(VOCAB),), -10.0)
    for rank, token in enumerate(order):
        logits[token] = 10.0 - rank
    return logits


def _decode(steps: list[list[int]], processor, budget: int) -> str:
    """Greedy decoding over scripted per-step logits with `processor`; text as the backends
    make it (stop excluded, stripped)."""
    new: list[int] = []
    for step in range(budget):
        scores = processor(torch.tensor([new]), _logits(steps[step])[None])[0]
        token = int(scores.argmax())
        if token in STOPS:
            break
        new.append(token)
    return "".join(VOCAB[t] for t in new).strip()


def _em(text: str, gold: str, single: bool) -> float:
    parsed = parse_letters(text, TOKENS.letters, single=single)
    return float(parsed is not None and set(parsed) == set(normalize_gold(gold)))


OFFICIAL_CASES = [
    # (name, task, per-step rankings, official output, official EM against gold "A")
    ("empty answer", "mcqu", [[1, 9, 4]], "", 0.0),
    ("separator first", "mcqu", [[2, 4]], ",", 0.0),
    ("spaced letter", "mcqu", [[9, 7, 4]], "A", 1.0),
    ("repeated letters", "mcq", [[4], [2], [7], [1]], "A, A", 1.0),
    ("early end-of-turn", "mcq", [[5], [1], [4], [4]], "B", 0.0),
    ("separator first, then letters", "mcq", [[3], [4], [2], [5], [1]], "A,B", 0.0),
]


@pytest.mark.parametrize(("name", "task", "steps", "text", "em"), OFFICIAL_CASES)
def test_official_decoding_on_constructed_logits(name, task, steps, text, em) -> None:
    budget = 1 if task == "mcqu" else 2 * len(TOKENS.letters)
    steps = steps + [[1]] * (budget - len(steps))
    out = _decode(steps, AllowedTokens([OFFICIAL]), budget)
    assert out == text, name
    assert _em(out, "A", single=task == "mcqu") == em, name
    if task == "mcqu":  # the backends' one-step path gives the same token
        token = argmax_allowed(_logits(steps[0]), OFFICIAL)
        assert ("" if token in STOPS else VOCAB[token].strip()) == text


LETTERS_CASES = [
    # the same logits under the letters protocol: MCQU is always a letter, MCQ never repeats
    ("empty answer", "mcqu", [[1, 9, 4]], "A", 1.0),
    ("separator first", "mcqu", [[2, 5]], "B", 0.0),
    ("repeated letters", "mcq", [[4], [2], [7, 5], [1]], "A,B", 0.0),
    ("early end-of-turn", "mcq", [[5], [1], [4], [4]], "B", 0.0),
]


@pytest.mark.parametrize(("name", "task", "steps", "text", "em"), LETTERS_CASES)
def test_letters_decoding_on_constructed_logits(name, task, steps, text, em) -> None:
    if task == "mcqu":
        out = argmax_letter(_logits(steps[0]), TOKENS)
    else:
        steps = steps + [[1]] * (6 - len(steps))
        processor = LetterConstraint([TOKENS], prompt_length=0, separators=(2, 3), stops=STOPS)
        out = _decode(steps, processor, 6)
    assert out == text, name
    assert _em(out, "A", single=task == "mcqu") == em, name


def test_letter_probabilities_per_protocol() -> None:
    logits = _logits([7, 4, 5])  # ' A' 10, 'A' 9, 'B' 8; C at -10
    letters = letter_probabilities(logits, TOKENS, "letters")  # bare tokens only
    official = letter_probabilities(logits, TOKENS, "official")  # bare + spaced, summed
    z = math.exp(9) + math.exp(8) + math.exp(-10)
    assert letters["A"] == pytest.approx(math.exp(9) / z)
    z = math.exp(10) + math.exp(9) + math.exp(8) + math.exp(-10) + math.exp(-10)
    assert official["A"] == pytest.approx((math.exp(10) + math.exp(9)) / z)
    assert official["B"] == pytest.approx((math.exp(8) + math.exp(-10)) / z)
    assert sum(official.values()) == pytest.approx(1.0)


def test_unknown_protocol_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"evaluation.protocol 'strict'.*'official', 'letters'"):
        check_protocol("strict")


# ------------------------------------------------------------------ the tiny model, both engines


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("protocol")
    files = {}
    for name, records in predict_testsets().items():
        files[name] = root / f"{name}.parquet"
        write_records(records, files[name])
    # the tiny Qwen3 that vLLM's CPU kernels run (head_dim 32): the same model for the emulated
    # and the real engine
    spec = vllm_tiny_spec(seed=3)
    prepare_base_model(
        "tiny", root / "base", list(files.values()), tiny=TinyModelSettings.from_dict(spec)
    )
    # an untied random output head: the tied tiny model echoes the prompt's last token (a
    # newline, so every answer is empty); with this one the constrained answers vary (letters,
    # repeats, separators, an empty MCQU answer) and the backends' agreement means something
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(root / "base")
    model.config.tie_word_embeddings = False
    generator = torch.Generator().manual_seed(3)
    head = torch.randn(model.lm_head.weight.shape, generator=generator)
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(root / "base")
    return {"base": root / "base", **files}


def test_official_allowed_set_on_the_tiny_tokenizer(env) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(env["base"])
    tokens = letter_tokens(tokenizer, ("A", "B", "C", "D"))

    def last(text: str) -> int:
        return tokenizer.encode(text, add_special_tokens=False)[-1]

    letters = {last(x) for letter in "ABCD" for x in (letter, f" {letter}")}
    separators = {last(x) for x in (",", ", ", " ", ",\n")}
    assert official_separator_ids(tokenizer) == tuple(sorted(separators))
    # eos <|im_end|> only: the pad <|endoftext|> names none of eos/eot/im_end
    assert official_stop_ids(tokenizer) == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    allowed = official_allowed_ids(tokenizer, tokens)
    assert allowed == tuple(sorted(letters | separators | set(official_stop_ids(tokenizer))))


def _items(env: dict[str, Path], tasks: tuple[str, ...]) -> list:
    records = [record for task in tasks for record in read_records(env[task])]
    return prompt_items(records, "official", 6)


def _real_vllm() -> bool:
    try:
        import vllm
    except ImportError:
        return False
    return getattr(vllm, "__spec__", None) is not None and hasattr(vllm, "LLM")


# the real engine runs in `make test-vllm` (the vLLM venv, `-m vllm`), in this process (no
# spawned engine: seconds per engine), as tests/modeling/test_vllm_engine.py runs it
@pytest.fixture(params=["emulated", pytest.param("real", marks=pytest.mark.vllm)])
def vllm_kind(request, monkeypatch) -> str:
    if request.param == "real":
        if not _real_vllm():
            pytest.skip("the vllm package is not installed (make test-vllm runs it in .venv-vllm)")
        monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    else:
        vllm_emulator.install(monkeypatch)
    return request.param


@pytest.mark.parametrize("protocol", ["official", "letters"])
def test_backends_agree_item_by_item(env, vllm_kind, protocol) -> None:
    from medinjection.modeling.vllm_backend import VllmPredictor

    # the letters protocol's MCQ regex needs vLLM's structured outputs (the real engine only),
    # and there the two backends' MCQ constraints differ by design (docs/deviations.md): those
    # constrained answers are counted, not required equal
    by_design = protocol == "letters"
    tasks = ("mcqu", "oeq") if by_design and vllm_kind == "emulated" else ("mcqu", "mcq", "oeq")
    items = _items(env, tasks)
    engine = TransformersPredictor(env["base"], None, batch_size=4, protocol=protocol)
    served = VllmPredictor(env["base"], None, protocol=protocol)
    ours, theirs = engine.predict(items), served.predict(items)
    differing = []
    for item, a, b in zip(items, ours, theirs, strict=True):
        if by_design and item.record.task == "mcq":
            assert a.greedy == b.greedy, item.record.id
            if a.constrained != b.constrained:
                differing.append((item.record.id, a.constrained, b.constrained))
            continue
        assert (a.greedy, a.constrained) == (b.greedy, b.constrained), item.record.id
        if a.letter_probs is not None:
            assert b.letter_probs == pytest.approx(a.letter_probs, abs=1e-4), item.record.id
    if vllm_kind == "emulated":  # the exact SamplingParams fields sent for the first MCQU item
        tokens = letter_tokens(served.tokenizer, items[0].letters)
        sent = [fields for _, fields in vllm_emulator.EmulatedLLM.sent[:3]]
        allowed = list(official_allowed_ids(served.tokenizer, tokens))
        letters = sorted({i for variant in tokens.variants for i in variant})
        assert sent == [
            {"temperature": 0.0, "max_tokens": 1},
            {"temperature": 0.0, "max_tokens": 1,
             "allowed_token_ids": allowed if protocol == "official" else letters},
            {"temperature": 0.0, "max_tokens": 1,
             "allowed_token_ids": letters if protocol == "official" else list(tokens.bare),
             "logprobs": len(letters) if protocol == "official" else len(tokens.bare)},
        ]  # fmt: skip
    compared = sum(i.record.task == "mcq" for i in items) if by_design else 0
    print(
        f"\n{vllm_kind}/{protocol}: {len(items)} items; MCQ constrained answers apart by "
        f"design, differing {len(differing)}/{compared} (transformers, vLLM): {differing}"
    )
    constrained = [p.constrained for p in ours if p.constrained is not None]
    assert len(constrained) == len([i for i in items if i.record.task != "oeq"])
    mcqu = [p.constrained for p, i in zip(ours, items, strict=True) if i.record.task == "mcqu"]
    if protocol == "letters":
        assert all(text in "ABCDEF" and len(text) == 1 for text in mcqu)  # always one letter
    else:  # the official step can end the answer at once; MCQ answers repeat letters
        assert "" in mcqu and len(set(constrained)) > 2, constrained
        assert any(
            len(text) > len(set(text.replace(" ", "").replace(",", ""))) for text in constrained
        )


def test_official_prompt_is_the_authors_published_form() -> None:
    from medinjection.prompts import prompt_messages, training_messages
    from medinjection.records import Record

    record = Record(
        id="t:1", origin="native", source="t", task="mcqu", split="test",
        question="  Quel est l'effet indésirable le plus probable ? ", answer="B",
        options=(("A", "Uropathie"), ("B", "Suppression médullaire ")),
    )  # fmt: skip
    user = "Quel est l'effet indésirable le plus probable ?\nChoix de réponses :\n(A) Uropathie\n(B) Suppression médullaire"  # noqa: E501
    assert prompt_messages(record, "official") == [{"role": "user", "content": user}]
    assert training_messages(record, "official")[-1] == {"role": "assistant", "content": "B"}
    with_context = Record(**{**record.__dict__, "context": "Un homme de 54 ans.", "task": "oeq",
                             "options": (), "answer": "La ribavirine."})  # fmt: skip
    assert prompt_messages(with_context, "official") == [
        {
            "role": "user",
            "content": "Un homme de 54 ans.\nQuel est l'effet indésirable le plus probable ?",
        }  # noqa: E501
    ]
    v1 = prompt_messages(record, "v1")  # the instructed variant keeps its system turn
    assert [m["role"] for m in v1] == ["system", "user"] and v1[1]["content"].startswith("Répondez")


def test_scoring_the_official_outputs() -> None:
    from medinjection.evaluation.scoring import score_mcq

    boot = {"samples": 20, "seed": 0}

    def row(output: str, gold: str) -> dict:
        return {"letters": "A,B,C", "gold": gold, "greedy_output": output,
                "constrained_output": output}  # fmt: skip

    # MCQU: the official step's empty and "," answers are invalid and score 0
    mcqu, _ = score_mcq([row("", "A"), row(",", "A"), row("A", "A"), row("B", "A")], "mcqu", boot)
    assert mcqu["em_constrained"] == 0.25 and mcqu["invalid_constrained"] == 0.5
    # MCQ: repeats collapse ("A, A" = {A}), an early stop keeps what came before
    mcq, _ = score_mcq([row("A, A", "A"), row("A,", "A,B"), row("B A B", "A,B")], "mcq", boot)
    assert mcq["em_constrained"] == pytest.approx(2 / 3)
    assert mcq["hamming_constrained"] == pytest.approx((1 + 0.5 + 1) / 3)
