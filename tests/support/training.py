"""The training set-up the model tests share: the tiny model, the `training:` keys, records."""

from __future__ import annotations

import json
from pathlib import Path

from medinjection.prompts import training_messages
from medinjection.records import Record
from medinjection.settings import TrainingSettings
from tests.support.tiny_spec import tiny_spec

TINY = tiny_spec(seed=7)
# the `training:` block of the model tests; paper-like lr (the demo config uses a larger one)
TRAINING = TrainingSettings(
    method="dora",
    r=16,
    alpha=16,
    dropout=0.05,
    target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    learning_rate=1.0e-4,
    lr_scheduler="cosine",
    warmup_ratio=0.05,
    per_device_batch_size=4,
    gradient_accumulation_steps=1,
    distributed="ddp",
    max_length=512,
    epochs=1,
    max_steps=4,
    seeds=(42,),
    bf16=False,
    gradient_checkpointing=False,
    loss_on="conversation",
    packing=False,
    group_by_length=False,  # the goldens below were drawn in random order
    pad_to_multiple_of=0,
    attn_implementation="sdpa",
    liger_kernel=False,
    save_steps=50,
    logging_steps=1,
)
HPARAMS = TRAINING.run_hparams(42)  # what render_train_config writes for seed 42


def train_record(i: int, split: str) -> Record:
    letters = "ABCDE"
    task = "mcqu" if i % 2 else "mcq"
    answer = letters[i % 5] if task == "mcqu" else f"{letters[i % 3]},{letters[3 + i % 2]}"
    return Record(
        id=f"t:{split}{i}",
        origin="native",
        source="t",
        task=task,
        split=split,
        question=f"Question {i} : quel traitement pour l'hépatite du patient âgé ?",
        answer=answer,
        options=tuple((letter, f"réponse {letter}{i}") for letter in letters),
    )


def write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            row = {"id": record.id, "task": record.task, "messages": training_messages(record)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
