"""LoRA/DoRA SFT on the tiny model: config, launcher, training, adapter reload, resume, merge."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from torch.distributed.run import get_args_parser
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from medinjection.modeling.checkpoints import TrainingInterrupted, last_checkpoint
from medinjection.modeling.kernels import apply_liger, check_attn_implementation
from medinjection.modeling.launch import launch_argv, rendezvous_port
from medinjection.modeling.train import (
    build_trainer,
    check_deepspeed,
    load_rows,
    main,
    train,
    world_size,
)
from medinjection.modeling.train_config import (
    HPARAM_KEYS,
    deepspeed_config,
    read_train_config,
    write_train_config,
)
from medinjection.records import write_records
from medinjection.settings import TinyModelSettings
from medinjection.stages.train import prepare_base_model
from tests.conftest import load_script
from tests.support.manifests import manifest_beside, record_folder
from tests.support.training import HPARAMS, TINY, TRAINING, train_record, write_jsonl

# First four logged losses of the seeded run below (CPU, float32), for a random model; measured
# again after this stop's merges (one process and the 2-process DDP run agree to 1e-5).
GOLDEN_LOSSES = [6.1331, 6.1429, 6.1401, 6.1272]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    train_records = [train_record(i, "train") for i in range(16)]
    write_records(train_records, root / "corpus.parquet")
    prepare_base_model(
        "tiny", root / "base", [root / "corpus.parquet"], tiny=TinyModelSettings.from_dict(TINY),
        out_manifest=manifest_beside(root / "base"),
    )  # fmt: skip
    write_jsonl(root / "train.jsonl", train_records)
    write_jsonl(root / "validation.jsonl", [train_record(i, "validation") for i in range(4)])
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
    load_script("render_train_config").main(smk)
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["mixture"] == "NAT-SYN" and payload["package_version"] == "0.1.0"
    assert list(payload["hparams"]) == list(HPARAM_KEYS) and payload["hparams"] == HPARAMS
    assert payload["deepspeed"] is None  # plain DDP


def test_train_config_rejects_unknown_and_missing_keys(tmp_path: Path) -> None:
    bad = {**{k: v for k, v in HPARAMS.items() if k != "seed"}, "packng": True}
    with pytest.raises(ValueError, match=r"missing keys \['seed'\], unknown keys \['packng'\]"):
        write_train_config(bad, "NAT", tmp_path / "c.json")
    with pytest.raises(ValueError, match="training.method"):
        write_train_config({**HPARAMS, "method": "qlora"}, "NAT", tmp_path / "c.json")
    with pytest.raises(ValueError, match="training.loss_on: str 'full' is not one of"):
        write_train_config({**HPARAMS, "loss_on": "full"}, "NAT", tmp_path / "c.json")
    with pytest.raises(ValueError, match=r"unknown keys \['gpus', 'mem_mb'\]"):  # resources
        write_train_config({**HPARAMS, "gpus": 2, "mem_mb": 1}, "NAT", tmp_path / "c.json")


def test_deepspeed_option_renders_a_zero_config(tmp_path: Path) -> None:
    zero3 = {**HPARAMS, "distributed": "zero3"}
    write_train_config(zero3, "ALL", tmp_path / "c.json")
    rendered = read_train_config(tmp_path / "c.json")["deepspeed"]
    assert rendered["zero_optimization"]["stage"] == 3
    # ZeRO-3 must gather the sharded adapter on save, or the saved adapter is empty
    assert rendered["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert rendered["train_micro_batch_size_per_gpu"] == "auto"  # filled in by the Trainer
    zero2 = deepspeed_config(replace(TRAINING, distributed="zero2"))
    assert zero2["zero_optimization"]["stage"] == 2
    assert "stage3_gather_16bit_weights_on_model_save" not in zero2["zero_optimization"]
    assert deepspeed_config(TRAINING) is None


def test_two_gpu_launch_is_a_torchrun_command_with_the_job_port() -> None:
    train_args = ["--config", "c.json", "--model", "results/models/base"]
    argv = launch_argv(2, train_args, {"SLURM_JOB_ID": "4123456"})
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    parsed = get_args_parser().parse_args(argv[3:])  # torchrun's own parser
    assert parsed.nnodes == "1" and parsed.nproc_per_node == "2"
    assert parsed.master_addr == "127.0.0.1" and parsed.master_port == 10_000 + 4123456 % 20_000
    assert parsed.standalone is False and parsed.module is True
    assert parsed.training_script == "medinjection.modeling.train"
    assert parsed.training_script_args == [*train_args, "--gpus", "2"]
    # two jobs sharing a node get different ports; a requeued job (same id) keeps its port
    assert rendezvous_port("4123456") != rendezvous_port("4123457")
    assert rendezvous_port("4123456_3") == rendezvous_port("4123456")
    assert 10_000 <= rendezvous_port("99999999") < 30_000
    with pytest.raises(ValueError, match="not a job number"):
        rendezvous_port("abc")
    local = get_args_parser().parse_args(launch_argv(2, train_args, {})[3:])
    assert 0 < local.master_port < 65536  # outside SLURM: a free port from the OS
    assert launch_argv(1, train_args, {}) == [
        sys.executable,
        "-m",
        "medinjection.modeling.train",
        *train_args,
        "--gpus",
        "1",
    ]
    assert launch_argv(0, [], {})[1:] == ["-m", "medinjection.modeling.train", "--gpus", "0"]


def test_two_process_ddp_through_the_launcher_matches_one_process(setup, tmp_path: Path) -> None:
    # the rule's command with compute.train.gpus: 2, on CPU (gloo): 2 workers x batch 2 = batch 4
    config = tmp_path / "ddp.json"
    write_train_config({**HPARAMS, "per_device_batch_size": 2}, "NAT", config)
    out = tmp_path / "run"
    env = {**os.environ, "SLURM_JOB_ID": "777", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "medinjection.modeling.launch", "--gpus", "2", "--"]
    proc = subprocess.run(
        [*cmd, *_cli_args(setup, out, config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-m torch.distributed.run --nnodes=1 --nproc-per-node=2" in proc.stderr
    assert "--master-port=10777" in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["effective_batch_size"]) == (2, 4)
    assert [loss for _, loss in metrics["train_loss"]] == pytest.approx(GOLDEN_LOSSES, abs=2e-3)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_launcher_runs_the_training_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medinjection.modeling.launch", "--gpus", "0", "--", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "launch: " in proc.stderr and "-m medinjection.modeling.train --help" in proc.stderr
    assert "usage: python -m medinjection.modeling.train" in proc.stdout


def test_world_size_must_match_the_configured_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert world_size(0) == 1 and world_size(1) == 1
    with pytest.raises(RuntimeError, match="compute.train.gpus is 2 but WORLD_SIZE is 1"):
        world_size(2)
    with pytest.raises(SystemExit):  # the launcher always passes --gpus; the CLI still parses it
        main(["--help"])


def test_speed_options_that_cannot_run_here_are_errors(setup) -> None:
    if importlib.util.find_spec("flash_attn") is None:
        with pytest.raises(RuntimeError, match="training.attn_implementation is flash_attention_2"):
            check_attn_implementation("flash_attention_2")
    check_attn_implementation("sdpa")
    check_deepspeed(HPARAMS)  # ddp needs nothing more
    if importlib.util.find_spec("deepspeed") is None or not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="training.distributed is zero3"):
            check_deepspeed({**HPARAMS, "distributed": "zero3"})
    if not torch.cuda.is_available():
        model = AutoModelForCausalLM.from_pretrained(setup["base"])
        with pytest.raises(RuntimeError, match="training.liger_kernel is true"):
            apply_liger(model)
        config = setup["root"] / "bf16.json"
        write_train_config({**HPARAMS, "bf16": True}, "NAT", config)
        with pytest.raises(RuntimeError, match="training.bf16 is true but no CUDA device"):
            _run(setup, setup["root"] / "bf16", config=config)


@pytest.mark.gpu
def test_bf16_training_on_a_gpu_records_its_memory(setup, tmp_path: Path) -> None:
    # the CUDA side of the errors above: where bf16 is possible it trains, on the GPU
    config = tmp_path / "bf16.json"
    write_train_config({**HPARAMS, "bf16": True}, "NAT", config)
    metrics = _run(setup, tmp_path / "bf16", config=config).metrics
    assert metrics["peak_gpu_memory_gib"] > 0 and metrics["steps"] == 4
    assert all(math.isfinite(loss) for _, loss in metrics["train_loss"])


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
    assert metrics["tokens_per_s_per_gpu"] > 0 and metrics["wall_s"] > 0
    assert metrics["world_size"] == 1 and metrics["effective_batch_size"] == 4
    assert metrics["hparams"] == HPARAMS and metrics["resumed_from"] is None
    assert metrics["loss_on"] == "conversation"
    provenance = metrics["provenance"]
    for key in ("train_sha256", "validation_sha256", "base_config_sha256", "train_config_sha256"):
        assert len(provenance[key]) == 64
    assert provenance["package_version"] == "0.1.0" and provenance["libraries"]["trl"] == "1.16.0"
    assert "git_commit" in provenance and len(provenance["run_fingerprint"]) == 64
    assert (out / "loss.png").is_file()  # its content: test_loss_plot_draws_both_curves


def test_loss_plot_draws_both_curves(trained, tmp_path: Path, saved_figures) -> None:
    from medinjection.modeling.train import write_loss_plot

    _, outcome = trained
    write_loss_plot(outcome.metrics, tmp_path / "loss.png", "NAT seed 42")
    ax = saved_figures["loss.png"].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("optimizer step", "loss",
                                                                  "NAT seed 42")  # fmt: skip
    lines = {line.get_label(): line.get_xydata().tolist() for line in ax.get_lines()}
    assert lines == {key: outcome.metrics[key] for key in ("train_loss", "eval_loss")}


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
    from medinjection.manifests import check_folder

    out, _ = trained
    manifests = [manifest_beside(setup["base"]), record_folder(out / "adapter", "train")]
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(model=str(setup["base"]), adapter=str(out / "adapter"),
                                    manifests=[str(m) for m in manifests]),
        output=types.SimpleNamespace(merged=str(tmp_path / "merged"),
                                     manifest=str(tmp_path / "merged.manifest.json")),
        log=[str(tmp_path / "log")],
    )  # fmt: skip
    load_script("merge_adapter").main(smk)
    assert json.loads((tmp_path / "merged.manifest.json").read_text())["rule"] == "merge_adapter"
    check_folder(tmp_path / "merged", [tmp_path / "merged.manifest.json"], "predict")
    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    ids = torch.tensor([tok.encode("Le patient a de la fièvre.", add_special_tokens=False)])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(setup["base"])
        peft = PeftModel.from_pretrained(base, out / "adapter").eval()(input_ids=ids).logits
    assert torch.allclose(merged, peft, atol=1e-4)


class _Interrupt(TrainerCallback):
    """Stops training after step 2, as a signal would (checkpoints are saved each step)."""

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= 2
        return control


def _cli_args(setup: dict[str, Path], out: Path, config: Path) -> list[str]:
    return [
        *("--config", str(config), "--model", str(setup["base"])),
        *("--train", str(setup["root"] / "train.jsonl")),
        *("--validation", str(setup["root"] / "validation.jsonl")),
        *("--adapter", str(out / "adapter"), "--metrics", str(out / "metrics.json")),
        *("--loss-plot", str(out / "loss.png"), "--checkpoints", str(out / "checkpoints")),
    ]


def _main_keeping_signal_handlers(argv: list[str]) -> None:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        main(argv)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_rerun_resumes_from_the_last_checkpoint(setup, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "every_step.json"
    write_train_config({**HPARAMS, "save_steps": 1}, "NAT", config)
    with pytest.raises(TrainingInterrupted, match="stopped at step 2 of 4"):
        _run(setup, out, config=config, callbacks=[_Interrupt()])
    assert not (out / "adapter").exists()  # an interrupted run declares no output
    assert [p.name for p in (out / "checkpoints").glob("*/checkpoint-2")] == ["checkpoint-2"]
    _main_keeping_signal_handlers(_cli_args(setup, out, config))  # as the rule's retry runs it
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-2"
    assert metrics["steps"] == 4
    assert [s for s, _ in metrics["train_loss"]] == [1, 2, 3, 4]  # history kept across the retry
    assert [loss for _, loss in metrics["train_loss"]] == pytest.approx(GOLDEN_LOSSES, abs=2e-3)


def test_changed_config_does_not_resume_foreign_checkpoints(setup, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "every_step.json"
    write_train_config({**HPARAMS, "save_steps": 1}, "NAT", config)
    with pytest.raises(TrainingInterrupted):
        _run(setup, out, config=config, callbacks=[_Interrupt()])
    other = tmp_path / "other.json"
    write_train_config({**HPARAMS, "learning_rate": 2.0e-4, "max_steps": 1}, "NAT", other)
    outcome = _run(setup, out, config=other)
    assert outcome.metrics["resumed_from"] is None and outcome.metrics["steps"] == 1
    assert len(list((out / "checkpoints").iterdir())) == 2  # one folder per run fingerprint


def test_half_written_checkpoints_are_skipped_and_removed(tmp_path: Path) -> None:
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text('{"global_step": 1}')
    (tmp_path / "checkpoint-6").mkdir()  # killed before trainer_state.json was written
    (tmp_path / "checkpoint-6" / "adapter_model.safetensors").write_bytes(b"partial")
    (tmp_path / "checkpoint-8").mkdir()
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # cut short
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert last_checkpoint(tmp_path / "fresh") is None


def _complete_steps(checkpoints: Path) -> list[int]:
    return sorted(
        int(p.parent.name.split("-")[1])
        for p in checkpoints.glob("*/checkpoint-*/trainer_state.json")
    )


def _start_and_signal(setup, out: Path, config: Path, sig: int) -> subprocess.CompletedProcess:
    """Start the training CLI, send `sig` once a checkpoint is complete, wait for the exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "medinjection.modeling.train", *_cli_args(setup, out, config)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if _complete_steps(out / "checkpoints"):
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    output, _ = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


LONG = {**HPARAMS, "max_steps": 16, "save_steps": 2, "logging_steps": 1}


def test_sigkilled_training_resumes_from_its_last_checkpoint(setup, tmp_path: Path) -> None:
    out, config = tmp_path / "run", tmp_path / "long.json"
    write_train_config(LONG, "NAT", config)
    killed = _start_and_signal(setup, out, config, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:]
    assert not (out / "metrics.json").exists()
    complete = _complete_steps(out / "checkpoints")
    assert complete and complete[-1] % 2 == 0 and complete[-1] < 16
    _main_keeping_signal_handlers(_cli_args(setup, out, config))  # the retry
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] == f"checkpoint-{complete[-1]}"
    assert metrics["steps"] == 16
    assert [s for s, _ in metrics["train_loss"]] == list(range(1, 17))
    assert all(math.isfinite(loss) for _, loss in metrics["train_loss"])


def test_sigterm_saves_a_checkpoint_and_fails_the_job(setup, tmp_path: Path) -> None:
    out, config = tmp_path / "run", tmp_path / "long.json"
    write_train_config({**LONG, "save_steps": 1000}, "NAT", config)  # no periodic checkpoint
    # no periodic checkpoint will come: signal as soon as the Trainer logs its first step
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "medinjection.modeling.train", *_cli_args(setup, out, config)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "'loss'" in line:  # the Trainer's first logged step: training is under way
            proc.send_signal(signal.SIGTERM)
            break
    output = "".join(lines) + proc.communicate(timeout=300)[0]
    assert proc.returncode not in (0, None) and proc.returncode != -signal.SIGTERM, output[-2000:]
    stopped = int(re.search(r"training stopped at step (\d+) of 16", output).group(1))
    assert stopped < 16 and _complete_steps(out / "checkpoints") == [stopped]
    assert not (out / "adapter").exists() and not (out / "metrics.json").exists()


def _trainer_rows(setup, tmp_path: Path, loss_on: str) -> tuple[list[dict], AutoTokenizer]:
    config = tmp_path / f"{loss_on}.json"
    write_train_config({**HPARAMS, "loss_on": loss_on}, "NAT", config)
    trainer, _ = build_trainer(
        read_train_config(config),
        setup["base"],
        setup["root"] / "train.jsonl",
        setup["root"] / "validation.jsonl",
        tmp_path / loss_on,
    )
    return [dict(row) for row in trainer.train_dataset], trainer.processing_class


def test_loss_on_answer_masks_the_prompt_and_conversation_masks_nothing(
    setup, tmp_path: Path
) -> None:
    conversation, tok = _trainer_rows(setup, tmp_path, "conversation")
    answer, _ = _trainer_rows(setup, tmp_path, "answer")
    messages = [json.loads(line)["messages"] for line in (setup["root"] / "train.jsonl").open()]
    assert len(conversation) == len(answer) == len(messages) == 16
    for conv, ans, msgs in zip(conversation, answer, messages, strict=True):
        assert conv["labels"] == conv["input_ids"]  # every token is trained
        assert ans["input_ids"] == conv["input_ids"]  # same sequence, different mask
        prompt = tok.apply_chat_template(msgs[:-1], add_generation_prompt=True, return_dict=True)
        n_prompt = len(prompt["input_ids"])
        assert ans["labels"][:n_prompt] == [-100] * n_prompt
        assert ans["labels"][n_prompt:] == ans["input_ids"][n_prompt:]
        assert tok.decode(ans["labels"][n_prompt:]) == msgs[-1]["content"] + "<|im_end|>\n"


def test_completion_loss_rows_and_training(setup, tmp_path: Path) -> None:
    rows = load_rows(setup["root"] / "train.jsonl", "answer")
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    assert rows[0]["completion"][0]["role"] == "assistant"
    full = load_rows(setup["root"] / "train.jsonl", "conversation")
    assert [m["role"] for m in full[0]["messages"]] == ["system", "user", "assistant"]
    config = tmp_path / "c.json"
    write_train_config({**HPARAMS, "loss_on": "answer", "max_steps": 1}, "NAT", config)
    outcome = _run(setup, tmp_path / "run", config=config)
    assert outcome.metrics["steps"] == 1 and math.isfinite(outcome.metrics["train_loss"][0][1])
    assert outcome.metrics["loss_on"] == "answer"


def test_messages_without_assistant_turn_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x:1", "messages": [{"role": "user", "content": "q"}]}))
    with pytest.raises(ValueError, match="bad.jsonl:1 \\(id 'x:1'\\)"):
        load_rows(path, "conversation")
