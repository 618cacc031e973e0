"""Fixtures of the real-vLLM tests: test sets, a tiny vLLM-runnable Qwen3 and adapters trained on
them by the project's training code (so greedy outputs are not empty and letters not near-ties).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from medinjection.evaluation.judge import judge_messages
from medinjection.modeling.base import prepare_base_model
from medinjection.modeling.merge import merge_adapter
from medinjection.modeling.train import train, write_train_config
from medinjection.prompts import render_user, training_messages
from medinjection.records import Record, write_records
from tests.tiny_spec import vllm_tiny_spec

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
# the training rule's hparams (config `training:` block), small enough for a CPU test
HPARAMS = {
    "r": 16,
    "alpha": 64,
    "dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "learning_rate": 1.0e-2,
    "lr_scheduler": "constant",
    "warmup_ratio": 0.0,
    "per_device_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "distributed": "ddp",
    "max_length": 512,
    "epochs": 1,
    "seed": 7,
    "bf16": False,
    "gradient_checkpointing": False,
    "loss_on": "answer",  # the answers, not the long shared prompt: learnt in few steps
    "packing": False,
    "group_by_length": False,
    "pad_to_multiple_of": 8,
    "attn_implementation": "sdpa",
    "liger_kernel": False,
    "save_steps": 1000,
    "logging_steps": 10,
}


def _mc(rng: random.Random, i: int, task: str) -> Record:
    n = rng.choice((4, 5)) if task == "mcqu" else 5
    letters = "ABCDE"[:n]
    if task == "mcqu":
        answer = rng.choice(letters)
    else:
        answer = ",".join(sorted(rng.sample(letters, rng.randint(1, 3))))
    a, b = rng.sample(WORDS, 2)
    return Record(
        id=f"v:{task}{i}",
        origin="native",
        source="v",
        task=task,  # type: ignore[arg-type]
        split="test",
        question=f"Cas {i} : {a} puis {b}. Quelle conduite tenir ?",
        answer=answer,
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
            question=f"Que faire devant {rng.choice(WORDS)} numéro {i} ?",
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
    """(judge messages, verdict) pairs: each open question with its gold answer (1) and with
    another question's answer (0)."""
    rows = []
    for k, record in enumerate(records):
        question = render_user(record, PROMPT_VERSION)
        other = records[(k + 1) % len(records)].answer
        rows.append((judge_messages(question, record.answer, record.answer), "1"))
        rows.append((judge_messages(question, other, record.answer), "0"))
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


# The tiny model's tied embeddings (std 0.02, 64 wide) cap every logit near 1.3: whatever LoRA
# learns, its softmax over 512 tokens stays flat. Scaled 25x, LoRA makes it confident in a few
# dozen steps. (LoRA cannot train embeddings: vLLM refuses adapters with modules_to_save.)
EMBEDDING_SCALE = 25.0


def sharpen_base(model_dir: Path) -> None:
    """Scale the random base model's (tied) embeddings by EMBEDDING_SCALE, in place."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.tie_word_embeddings
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(EMBEDDING_SCALE)
    model.save_pretrained(model_dir)


def random_head(model_dir: Path, out_dir: Path, seed: int = 3) -> None:
    """A copy of `model_dir` with an untied random output head (std 1). The adapted models are
    confident and answer one letter almost everywhere; this one's official MCQ answers vary
    (letters, separators, repeats), so the engines' agreement on it tests decoding paths the
    adapted models never take."""
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


def build_workspace(root: Path, lora_steps: int = 40, dora_steps: int = 40) -> dict[str, Path]:
    """Test sets, base model, LoRA and DoRA adapters, the merged models, a random-head model."""
    sets = vllm_records()
    out: dict[str, Path] = {"root": root}
    for name, records in sets.items():
        out[name] = root / "testsets" / f"{name}.parquet"
        write_records(records, out[name])
    out["base"] = root / "base"
    files = [out[name] for name in sets]
    prepare_base_model("tiny", out["base"], vllm_tiny_spec(seed=5), files, None, None)
    # before sharpening: with the 25x embeddings the last prompt token (the same template token
    # in every prompt) dominates the hidden state, and a random head answers one letter always
    out["random_head"] = root / "random_head"
    random_head(out["base"], out["random_head"])
    sharpen_base(out["base"])
    data = training_files(sets, root / "mixture")
    out["lora"] = train_adapter(root, out["base"], data, "lora", lora_steps)
    out["dora"] = train_adapter(root, out["base"], data, "dora", dora_steps)
    out["lora_merged"] = root / "lora_merged"
    merge_adapter(out["base"], out["lora"], out["lora_merged"])
    out["dora_merged"] = root / "dora_merged"
    merge_adapter(out["base"], out["dora"], out["dora_merged"])
    return out
