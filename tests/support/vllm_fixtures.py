"""Fixtures of the real-vLLM tests: test sets, a tiny vLLM-runnable Qwen3 whose answers depend on
the question (`reader_base`), and LoRA/DoRA adapters trained on it by the project's training code.

Why a constructed base: a random tiny model, and the adapters the training code makes from it in
a CI-size run, answer one letter on almost every item (the answer is not learnable from the
question in a few dozen steps), so the engines' agreement compared little. `reader_base` sets a
few weights of the random model by hand so that each question's keyword picks the letter, the
judge prompts pick a digit, and the adapters only perturb that: both engines then face varied
answers, letter probabilities away from 0 and 1, and both verdicts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from medinjection.evaluation.judge import judge_messages
from medinjection.modeling.train import train, write_train_config
from medinjection.prompts import prompt_messages, render_user, training_messages
from medinjection.records import Record, write_records
from medinjection.settings import TinyModelSettings, TrainingSettings
from medinjection.stages.train import merge_adapter, prepare_base_model
from tests.support.tiny_spec import vllm_tiny_spec

PROMPT_VERSION = "v1"
N_MCQU, N_MCQ, N_OEQ = 48, 24, 8
WORDS = (
    "fièvre toux dyspnée œdème angor syncope ictère anémie sepsis asthme diabète goutte "
    "migraine vertige purpura arthrite colique hépatite pneumonie embolie thrombose anévrisme "
    "méningite cystite gastrite ulcère lithiase pancréatite"
).split()
TREATMENTS = (
    "repos strict, hydratation, antalgiques, antibiotiques, anticoagulants, chirurgie, "
    "corticoïdes, diurétiques, insuline, surveillance clinique, oxygène, kinésithérapie"
).split(", ")
# the training rule's `training:` block, small enough for a CPU test (method and max_steps are
# set per run: HPARAMS | {"method": ..., "max_steps": ...})
TRAINING = TrainingSettings(
    method="lora",
    r=16,
    alpha=64,
    dropout=0.0,
    target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    # small: the adapters perturb reader_base's answers (probabilities move by 1e-2 to 2e-1, a
    # few answers change) without erasing them; 1e-2 taught both adapters one letter everywhere
    learning_rate=1.0e-3,
    lr_scheduler="constant",
    warmup_ratio=0.0,
    per_device_batch_size=8,
    gradient_accumulation_steps=1,
    distributed="ddp",
    max_length=512,
    epochs=1,
    max_steps=0,
    seeds=(7,),
    bf16=False,
    gradient_checkpointing=False,
    loss_on="answer",  # the answers, not the long shared prompt: learnt in few steps
    packing=False,
    group_by_length=False,
    pad_to_multiple_of=8,
    attn_implementation="sdpa",
    liger_kernel=False,
    save_steps=1000,
    logging_steps=10,
)
HPARAMS = TRAINING.run_hparams(7)


# one keyword per answer letter: a question names the keywords of its gold letters (reader_base
# reads them); the other words never name a letter
KEYWORDS = {"A": "fièvre", "B": "toux", "C": "angor", "D": "ictère", "E": "sepsis"}
FILLERS = [w for w in WORDS if w not in KEYWORDS.values()]
# the keyword of half the open questions: the constructed judge answers 1 where it is present
JUDGE_KEYWORD = KEYWORDS["A"]


def _mc(rng: random.Random, i: int, task: str) -> Record:
    n = rng.choice((4, 5)) if task == "mcqu" else 5
    letters = "ABCDE"[:n]
    gold = (
        [rng.choice(letters)] if task == "mcqu" else sorted(rng.sample(letters, rng.randint(1, 3)))
    )
    keywords = [KEYWORDS[letter] for letter in gold]
    rng.shuffle(keywords)
    return Record(
        id=f"v:{task}{i}",
        origin="native",
        source="v",
        task=task,  # type: ignore[arg-type]
        split="test",
        question=(
            f"Cas {i} : {', '.join(keywords)} puis {rng.choice(FILLERS)}. Quelle conduite tenir ?"
        ),
        answer=",".join(gold),
        options=tuple((letter, rng.choice(TREATMENTS)) for letter in letters),
    )


def vllm_records(seed: int = 11) -> dict[str, list[Record]]:
    """MCQU, MCQ and open-question test sets with seeded varied content."""
    rng = random.Random(seed)
    oeq = [
        Record(
            id=f"v:oeq{i}",
            origin="native",
            source="v",
            task="oeq",
            split="test",
            question=(
                f"Que faire devant {JUDGE_KEYWORD if i % 2 == 0 else rng.choice(FILLERS)} "
                f"numéro {i} ?"
            ),
            answer=f"{rng.choice(TREATMENTS)} et {rng.choice(TREATMENTS)}",
        )
        for i in range(N_OEQ)
    ]
    return {
        "mcqu": [_mc(rng, i, "mcqu") for i in range(N_MCQU)],
        "mcq": [_mc(rng, i, "mcq") for i in range(N_MCQ)],
        "oeq": oeq,
    }


def judge_rows(records: list[Record]) -> list[tuple[list[dict[str, str]], str]]:
    """(judge messages, verdict) pairs: each open question with its gold answer and with another
    question's answer. The verdict is the constructed judge's rule (reader_base), not
    equivalence: 1 where the question names JUDGE_KEYWORD (half the questions), else 0; the
    adapters train on it, so they keep both verdicts."""
    rows = []
    for k, record in enumerate(records):
        question = render_user(record, PROMPT_VERSION)
        verdict = "1" if JUDGE_KEYWORD in record.question else "0"
        other = records[(k + 1) % len(records)].answer
        rows.append((judge_messages(question, record.answer, record.answer), verdict))
        rows.append((judge_messages(question, other, record.answer), verdict))
    return rows


def _write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def training_files(sets: dict[str, list[Record]], root: Path) -> tuple[Path, Path]:
    """train.jsonl (every test item with its gold answer, plus judge verdicts) and a small
    validation.jsonl, as the mixture rule writes them."""
    rows = [
        {"id": r.id, "messages": training_messages(r, PROMPT_VERSION)}
        for records in sets.values()
        for r in records
    ]
    for k, (messages, verdict) in enumerate(judge_rows(sets["oeq"])):
        rows.append(
            {"id": f"judge:{k}", "messages": [*messages, {"role": "assistant", "content": verdict}]}
        )
    _write_jsonl(rows, root / "train.jsonl")
    _write_jsonl(rows[:8], root / "validation.jsonl")
    return root / "train.jsonl", root / "validation.jsonl"


def train_adapter(root: Path, base: Path, data: tuple[Path, Path], method: str, steps: int) -> Path:
    """A LoRA or DoRA adapter trained by the training rule's code (`modeling.train.train`)."""
    run = root / method
    write_train_config({**HPARAMS, "method": method, "max_steps": steps}, method, run / "cfg.json")
    train(
        config_path=run / "cfg.json",
        model_dir=base,
        train_path=data[0],
        validation_path=data[1],
        adapter_dir=run / "adapter",
        metrics_path=run / "metrics.json",
        loss_plot=run / "loss.png",
        checkpoints_dir=run / "checkpoints",
    )
    return run / "adapter"


def reader_base(model_dir: Path, out_dir: Path, sets: dict[str, list[Record]]) -> None:
    """A copy of the random `model_dir` whose answers depend on the question, by construction.

    Residual dimensions 0-15 are cleared in every embedding and given meanings: 0-4 mark the
    keyword of letter A-E (KEYWORDS), 5 marks "_" (only the judge prompts have it), 6 marks the
    tokens only multiple-choice prompts have, 15 marks a letter token. Layer 0 attends uniformly
    (its q_norm weight is 0) and copies dimensions 0-6 to 8-14: at the last position they hold
    each marker's share of the prompt. The untied output head reads them: a letter from its
    keyword (bare letter above " X"), suppressed in judge prompts; "1" from the judge marker plus
    JUDGE_KEYWORD, "0" from the judge marker with a fixed lead, both suppressed in
    multiple-choice prompts; <|im_end|> after a letter. The rest stays random, scaled down where
    it would drown these dimensions: layer 1's attention output and the MLP outputs x1e-3, the
    cleared blocks of layer 0's v/o x1e-6 (never 0: DoRA divides by each row's norm). The head's
    other rows stay random: open answers are the random model's text. Logit gaps between the
    answers are a few units: far above float noise, probabilities away from 0 and 1.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)

    def token(text: str) -> int:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert len(ids) == 1, f"{text!r} is {len(ids)} tokens of the fixture tokenizer"
        return ids[0]

    def token_set(conversations: list[list[dict[str, str]]]) -> set[int]:
        texts = (
            tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
            for c in conversations
        )
        return {i for text in texts for i in tokenizer.encode(text, add_special_tokens=False)}

    keywords = [token(" " + KEYWORDS[letter]) for letter in "ABCDE"]
    bare = [token(letter) for letter in "ABCDE"]
    spaced = [token(" " + letter) for letter in "ABCDE"]
    zero, one = token("0"), token("1")
    mc = token_set([prompt_messages(r, PROMPT_VERSION) for n in ("mcqu", "mcq") for r in sets[n]])
    oeq = token_set([prompt_messages(r, PROMPT_VERSION) for r in sets["oeq"]])
    judge = token_set([m for m, _ in judge_rows(sets["oeq"])])
    marker = token("_")
    assert marker in judge and marker not in mc | oeq
    mc_only = sorted(mc - judge - oeq - {*keywords, *bare, *spaced, zero, one})
    assert mc_only
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, :16] = 0
        for letter, t in enumerate(keywords):
            embed[t, letter] = 1.0
        embed[marker, 5] = 1.0
        embed[mc_only, 6] = 1.0
        embed[bare + spaced, 15] = 1.0
        attention = model.model.layers[0].self_attn
        attention.q_norm.weight.zero_()  # q = 0: uniform attention over the prompt
        v, o = attention.v_proj.weight, attention.o_proj.weight
        v.mul_(1e-3)
        o.mul_(1e-3)
        for weight in (v, o):  # DoRA divides by each row's norm: 1e-6, not 0
            weight[:, :16] *= 1e-3
            weight[:16, :] *= 1e-3
        for dim in range(7):  # the many multiple-choice markers weigh 1/50 each
            v[dim, dim] = 1.0
            o[8 + dim, dim] = 20.0 * (0.02 if dim == 6 else 1.0)
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.mul_(1e-3)
        model.model.layers[1].self_attn.o_proj.weight.mul_(1e-3)
        head = torch.randn(model.lm_head.weight.shape, generator=generator)
        head[:, :16] = 0
        for letter in range(5):
            for t, weight in ((bare[letter], 1.2), (spaced[letter], 0.84)):
                head[t, 8 + letter] = weight
                head[t, 13] = -4.0  # no letter in judge prompts
        for t in (zero, one):
            head[t, 13] = 3.0  # a digit first in judge prompts
            head[t, 14] = -4.0  # no digit in multiple-choice prompts
        head[one, 8] = 2.0  # JUDGE_KEYWORD is KEYWORDS["A"]
        head[zero, 13] = 3.25
        head[tokenizer.convert_tokens_to_ids("<|im_end|>"), 15] = 4.0
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(head)
    shutil.copytree(model_dir, out_dir)
    model.save_pretrained(out_dir)


def random_head(model_dir: Path, out_dir: Path, seed: int = 3) -> None:
    """A copy of `model_dir` with an untied random output head (std 1): the plain random model,
    whose official MCQ answers vary in other ways (separators, repeats, newlines) than the
    constructed model's, so the engines' agreement on it tests decoding paths that one rarely
    takes."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(model_dir, out_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.config.tie_word_embeddings = False
    generator = torch.Generator().manual_seed(seed)
    head = torch.randn(model.lm_head.weight.shape, generator=generator)
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(out_dir)


def build_workspace(root: Path, lora_steps: int = 10, dora_steps: int = 10) -> dict[str, Path]:
    """Test sets, the constructed base model, LoRA and DoRA adapters trained on it, the merged
    models, and a random-head model."""
    sets = vllm_records()
    out: dict[str, Path] = {"root": root}
    for name, records in sets.items():
        out[name] = root / "testsets" / f"{name}.parquet"
        write_records(records, out[name])
    files = [out[name] for name in sets]
    prepare_base_model(
        "tiny", root / "random", files, tiny=TinyModelSettings.from_dict(vllm_tiny_spec(seed=5))
    )
    out["random_head"] = root / "random_head"
    # seed 5: 6 distinct official MCQ answers (letters, spaces, newlines), 2 MCQU letters
    random_head(root / "random", out["random_head"], seed=5)
    out["base"] = root / "base"
    reader_base(root / "random", out["base"], sets)
    data = training_files(sets, root / "mixture")
    out["lora"] = train_adapter(root, out["base"], data, "lora", lora_steps)
    out["dora"] = train_adapter(root, out["base"], data, "dora", dora_steps)
    out["lora_merged"] = root / "lora_merged"
    merge_adapter(out["base"], out["lora"], out["lora_merged"])
    out["dora_merged"] = root / "dora_merged"
    merge_adapter(out["base"], out["dora"], out["dora_merged"])
    return out
