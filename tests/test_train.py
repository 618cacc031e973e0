"""LoRA/DoRA SFT on the tiny model: config, launcher, training, adapter reload, resume, merge."""

from __future__ import annotations

import importlib.util
import json
import math
import types
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from medinjection.modeling.base import prepare_base_model
from medinjection.modeling.launch import launcher_command
from medinjection.modeling.train import count_over_length, load_rows, main, train
from medinjection.modeling.train_config import HPARAM_KEYS, write_train_config
from medinjection.prompts import training_messages
from medinjection.records import Record, write_records
from tests.tiny_spec import tiny_spec

TINY = tiny_spec(seed=7)
HPARAMS = {  # the `training:` keys; paper-like lr (the demo config uses a larger one)
    "method": "dora",
    "r": 16,
    "alpha": 16,
    "dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "learning_rate": 1.0e-4,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.05,
    "per_device_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "gpus": 0,
    "max_length": 512,
    "epochs": 1,
    "max_steps": 4,
    "seed": 42,
    "bf16": False,
    "gradient_checkpointing": False,
    "loss": "full",
    "runtime_min": 30,
    "mem_mb": 4000,
}
# First four logged losses of the seeded run below (CPU, float32), for a random model.
GOLDEN_LOSSES = [6.0753, 6.0770, 6.0715, 6.0617]
SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def _record(i: int, split: str) -> Record:
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


def _write_jsonl(path: Path, records: list[Record]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            row = {"id": record.id, "task": record.task, "messages": training_messages(record)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _load_script(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    train_records = [_record(i, "train") for i in range(16)]
    write_records(train_records, root / "corpus.parquet")
    prepare_base_model("tiny", root / "base", TINY, [root / "corpus.parquet"], None, None)
    _write_jsonl(root / "train.jsonl", train_records)
    _write_jsonl(root / "validation.jsonl", [_record(i, "validation") for i in range(4)])
    write_train_config(HPARAMS, "NAT", root / "config.json")
    return {"root": root, "base": root / "base"}


def _run(setup: dict[str, Path], out: Path, config: Path | None = None, **kwargs):
    root = setup["root"]
    return train(
        config_path=config or root / "config.json",
        model_dir=setup["base"],
        train_path=root / "train.jsonl",
        validation_path=root / "validation.jsonl",
        adapter_dir=out / "adapter",
        metrics_path=out / "metrics.json",
        loss_plot=out / "loss.png",
        checkpoints_dir=out / "checkpoints",
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(setup: dict[str, Path]):
    out = setup["root"] / "run"
    return out, _run(setup, out)


def test_render_train_config_script_writes_hparams(tmp_path: Path) -> None:
    smk = types.SimpleNamespace(
        output=types.SimpleNamespace(config=str(tmp_path / "c.json")),
        params=types.SimpleNamespace(hparams=HPARAMS, mixture="NAT-SYN"),
        log=[str(tmp_path / "log")],
    )
    _load_script("render_train_config").main(smk)
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["mixture"] == "NAT-SYN" and payload["package_version"] == "0.1.0"
    assert list(payload["hparams"]) == list(HPARAM_KEYS) and payload["hparams"] == HPARAMS


def test_train_config_rejects_unknown_and_missing_keys(tmp_path: Path) -> None:
    bad = {**{k: v for k, v in HPARAMS.items() if k != "seed"}, "packing": True}
    with pytest.raises(ValueError, match=r"missing keys \['seed'\], unknown keys \['packing'\]"):
        write_train_config(bad, "NAT", tmp_path / "c.json")
    with pytest.raises(ValueError, match="training.method"):
        write_train_config({**HPARAMS, "method": "qlora"}, "NAT", tmp_path / "c.json")


def test_launcher_command() -> None:
    assert launcher_command(0) == "python"
    assert launcher_command(1) == "python"
    assert launcher_command(2) == "torchrun --standalone --nnodes=1 --nproc-per-node=2"
    cmd = f"{launcher_command(2)} -m medinjection.modeling.train --config c.json"
    assert cmd.split()[:5] == [
        "torchrun",
        "--standalone",
        "--nnodes=1",
        "--nproc-per-node=2",
        "-m",
    ]


def test_dora_training_writes_adapter_metrics_and_plot(trained) -> None:
    out, outcome = trained
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["use_dora"] is True and config["r"] == 16
    assert sorted(config["target_modules"]) == sorted(HPARAMS["target_modules"])
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not (out / "adapter" / "model.safetensors").exists()  # only the adapter
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == outcome.metrics
    assert metrics["steps"] == 4 and [s for s, _ in metrics["train_loss"]] == [1, 2, 3, 4]
    assert [s for s, _ in metrics["eval_loss"]] == [4]
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_train_truncated"]) == (16, 4, 0)
    assert metrics["tokens_seen"] > 16 * 50
    assert metrics["hparams"] == HPARAMS and metrics["resumed_from"] is None
    assert len(metrics["provenance"]["train_sha256"]) == 64
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_first_losses_are_finite_and_match_golden_values(trained) -> None:
    _, outcome = trained
    losses = [loss for _, loss in outcome.metrics["train_loss"]]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses == pytest.approx(GOLDEN_LOSSES, abs=2e-3)


def test_reloaded_adapter_gives_the_in_memory_logits(trained, setup) -> None:
    out, outcome = trained
    tok = AutoTokenizer.from_pretrained(setup["base"])
    ids = torch.tensor([tok.encode("Quel traitement pour l'hépatite ?", add_special_tokens=False)])
    outcome.model.eval()
    with torch.no_grad():
        expected = outcome.model(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(setup["base"])
        reloaded = PeftModel.from_pretrained(base, out / "adapter").eval()
        got = reloaded(input_ids=ids).logits
        untrained = AutoModelForCausalLM.from_pretrained(setup["base"])(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(untrained, expected, atol=1e-5)  # the adapter changed something


def test_merged_model_matches_the_adapter(trained, setup, tmp_path: Path) -> None:
    out, _ = trained
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(model=str(setup["base"]), adapter=str(out / "adapter")),
        output=types.SimpleNamespace(merged=str(tmp_path / "merged")),
        log=[str(tmp_path / "log")],
    )
    _load_script("merge_adapter").main(smk)
    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    ids = torch.tensor([tok.encode("Le patient a de la fièvre.", add_special_tokens=False)])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(setup["base"])
        peft = PeftModel.from_pretrained(base, out / "adapter").eval()(input_ids=ids).logits
    assert torch.allclose(merged, peft, atol=1e-4)


class _Interrupt(TrainerCallback):
    """Stops training after step 2, as a killed job would (checkpoints are saved each step)."""

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= 2
        return control


def test_rerun_resumes_from_the_last_checkpoint(setup, tmp_path: Path) -> None:
    out = tmp_path / "run"
    interrupted = _run(setup, out, save_steps=1, callbacks=[_Interrupt()])
    assert interrupted.metrics["steps"] == 2
    assert [p.name for p in (out / "checkpoints").glob("*/checkpoint-2")] == ["checkpoint-2"]
    main(  # the CLI, as the train rule calls it after an interrupted attempt
        [
            *("--config", str(setup["root"] / "config.json"), "--model", str(setup["base"])),
            *("--train", str(setup["root"] / "train.jsonl")),
            *("--validation", str(setup["root"] / "validation.jsonl")),
            *("--adapter", str(out / "adapter"), "--metrics", str(out / "metrics.json")),
            *("--loss-plot", str(out / "loss.png"), "--checkpoints", str(out / "checkpoints")),
            *("--save-steps", "1"),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-2"
    assert metrics["steps"] == 4
    assert [s for s, _ in metrics["train_loss"]] == [1, 2, 3, 4]  # history kept across the retry
    assert [loss for _, loss in metrics["train_loss"]] == pytest.approx(GOLDEN_LOSSES, abs=2e-3)


def test_changed_config_does_not_resume_foreign_checkpoints(setup, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(setup, out, save_steps=1, callbacks=[_Interrupt()])
    other = tmp_path / "other.json"
    write_train_config({**HPARAMS, "learning_rate": 2.0e-4, "max_steps": 1}, "NAT", other)
    outcome = _run(setup, out, config=other)
    assert outcome.metrics["resumed_from"] is None and outcome.metrics["steps"] == 1
    assert len(list((out / "checkpoints").iterdir())) == 2  # one folder per run fingerprint


def test_completion_loss_rows_and_length_report(setup, tmp_path: Path) -> None:
    rows = load_rows(setup["root"] / "train.jsonl", "completion")
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    assert rows[0]["completion"][0]["role"] == "assistant"
    full = load_rows(setup["root"] / "train.jsonl", "full")
    assert [m["role"] for m in full[0]["messages"]] == ["system", "user", "assistant"]
    tok = AutoTokenizer.from_pretrained(setup["base"])
    n_tokens = len(tok.apply_chat_template(full[0]["messages"], return_dict=True)["input_ids"])
    assert count_over_length(tok, rows, n_tokens - 1) >= 1
    assert count_over_length(tok, rows, 10_000) == 0
    config = tmp_path / "c.json"
    write_train_config({**HPARAMS, "loss": "completion", "max_steps": 1}, "NAT", config)
    outcome = _run(setup, tmp_path / "run", config=config)
    assert outcome.metrics["steps"] == 1 and math.isfinite(outcome.metrics["train_loss"][0][1])


def test_messages_without_assistant_turn_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x:1", "messages": [{"role": "user", "content": "q"}]}))
    with pytest.raises(ValueError, match="bad.jsonl:1 \\(id 'x:1'\\)"):
        load_rows(path, "full")
