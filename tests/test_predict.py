"""Prediction backends on the tiny model: output contract, constrained decoding, determinism."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from medinjection.modeling.base import prepare_base_model
from medinjection.modeling.decoding import (
    LetterConstraint,
    LetterTokens,
    letter_tokens,
    multi_answer_regex,
)
from medinjection.modeling.predict import max_new_tokens, predict, prompt_items
from medinjection.modeling.transformers_backend import TransformersPredictor
from medinjection.modeling.vllm_backend import adapter_rank, max_lora_rank
from medinjection.prompts import messages_hash, prompt_messages
from medinjection.records import Record, read_records, write_records
from tests.tiny_spec import tiny_spec

TINY = tiny_spec(seed=3)
COLUMNS = [
    "id",
    "task",
    "prompt_hash",
    "letters",
    "gold",
    "greedy_output",
    "constrained_output",
    "letter_probs",
]
SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def _mc(i: int, task: str, n_options: int, answer: str) -> Record:
    letters = "ABCDEFGHIJ"[:n_options]
    return Record(
        id=f"t:{task}{i}",
        origin="native",
        source="t",
        task=task,
        split="test",
        question=f"Question {i} : quelle est la conduite à tenir devant une fièvre ?",
        answer=answer,
        options=tuple((letter, f"proposition {letter} numéro {i}") for letter in letters),
    )


def _testsets() -> dict[str, list[Record]]:
    mcqu = [_mc(i, "mcqu", 4 + i % 3, "ABCD"[i % 4]) for i in range(9)]
    mcq = [_mc(i, "mcq", 5, "A,C") for i in range(5)]
    oeq = [
        Record(
            id=f"t:oeq{i}",
            origin="native",
            source="t",
            task="oeq",
            split="test",
            question=f"Pourquoi l'œdème {i} ?",
            answer="Insuffisance cardiaque.",
        )
        for i in range(3)
    ]
    return {"mcqu": mcqu, "mcq": mcq, "oeq": oeq}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    files = {}
    for name, records in _testsets().items():
        files[name] = root / "testsets" / f"{name}.parquet"
        write_records(records, files[name])
    prepare_base_model("tiny", root / "base", TINY, list(files.values()), None, None)
    return {"root": root, "base": root / "base", **files}


def _run_script(env: dict[str, Path], out_dir: Path) -> list[Path]:
    spec = importlib.util.spec_from_file_location("predict_script", SCRIPTS / "predict.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    outs = [out_dir / f"{name}.parquet" for name in ("mcqu", "mcq", "oeq")]
    smk = types.SimpleNamespace(  # no `adapter` input: the base model row
        input=types.SimpleNamespace(
            model=str(env["base"]), testsets=[str(env[n]) for n in ("mcqu", "mcq", "oeq")]
        ),
        output=types.SimpleNamespace(predictions=[str(p) for p in outs]),
        params=types.SimpleNamespace(
            backend="transformers", batch_size=4, max_new_tokens_oeq=6, prompt_version="v1"
        ),
        log=[str(out_dir / "predict.log")],
    )
    script.main(smk)
    return outs


@pytest.fixture(scope="module")
def predictions(env: dict[str, Path]) -> dict[str, list[dict]]:
    outs = _run_script(env, env["root"] / "run1")
    return {p.stem: pq.read_table(p).to_pylist() for p in outs}


def test_output_schema_and_contents(predictions, env) -> None:
    for name, rows in predictions.items():
        table = pq.read_table(env["root"] / "run1" / f"{name}.parquet")
        assert table.column_names == COLUMNS
        records = read_records(env[name])
        assert [r["id"] for r in rows] == [rec.id for rec in records]
        for row, rec in zip(rows, records, strict=True):
            assert row["task"] == rec.task and row["gold"] == rec.answer
            assert row["prompt_hash"] == messages_hash(prompt_messages(rec, "v1"))
            assert row["letters"] == ",".join(rec.option_letters())
    first = predictions["mcqu"][0]
    assert (first["letters"], first["gold"]) == ("A,B,C,D", "A")
    for row in predictions["oeq"]:
        assert row["letters"] == "" and row["constrained_output"] is None
        assert row["letter_probs"] is None and isinstance(row["greedy_output"], str)
    for row in predictions["mcqu"] + predictions["mcq"]:
        probs = json.loads(row["letter_probs"])
        assert sorted(probs) == row["letters"].split(",")
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_mcqu_constrained_answer_is_one_allowed_letter(predictions) -> None:
    for row in predictions["mcqu"]:
        assert row["constrained_output"] in row["letters"].split(",")


def test_mcq_constrained_output_uses_only_allowed_letters_once(predictions) -> None:
    for row in predictions["mcq"]:
        text = row["constrained_output"]
        assert re.fullmatch(r"[A-E, ]*", text), text
        letters = re.findall(r"[A-E]", text)
        assert len(letters) == len(set(letters))


def test_predictions_are_deterministic(predictions, env) -> None:
    outs = _run_script(env, env["root"] / "run2")
    again = {p.stem: pq.read_table(p).to_pylist() for p in outs}
    assert again == predictions


def test_mcqu_one_forward_pass_equals_constrained_generate(env) -> None:
    predictor = TransformersPredictor(env["base"], None, batch_size=4)
    items = prompt_items(read_records(env["mcqu"]), "v1", 6)
    enc = predictor.encode(items)  # 9 items, 4 to 6 options: left padding is exercised
    assert (enc["attention_mask"] == 0).any()
    tokens = [letter_tokens(predictor.tokenizer, item.letters) for item in items]
    by_forward = [p.constrained for p in predictor.predict_batch(items)]
    generated = predictor.constrained_generate(enc, tokens, max_new_tokens=1, multi=False)
    by_generate = [predictor.decode(ids, 1) for ids in generated]
    assert by_forward == by_generate
    assert len(set(by_forward)) >= 1 and all(a in "ABCDEF" for a in by_forward)


def test_letter_constraint_masks_hand_computed_logits() -> None:
    row = LetterTokens(letters=("A", "B"), bare=(10, 11), variants=((10, 20), (11, 21)))
    processor = LetterConstraint([row], prompt_length=2, separators=(5,), stops=(2,))
    input_ids = torch.tensor([[7, 8, 20]])  # ' A' already generated
    scores = torch.arange(30, dtype=torch.float).unsqueeze(0)
    out = processor(input_ids, scores)
    allowed = torch.isfinite(out[0]).nonzero().flatten().tolist()
    assert allowed == [2, 5, 11, 21]  # stop, separator, B and ' B'; A is used up
    assert out[0, 21] == 21.0


def test_budgets_follow_the_official_script() -> None:
    sets = _testsets()
    assert max_new_tokens(sets["mcqu"][0], 512) == 1
    assert max_new_tokens(sets["mcq"][0], 512) == 10
    assert max_new_tokens(sets["oeq"][0], 512) == 512


def test_multi_answer_regex() -> None:
    pattern = re.compile(multi_answer_regex(["A", "B", "C"]))
    for ok in ("A", "A, C", "B, C", "A, B, C"):
        assert pattern.fullmatch(ok), ok
    for bad in ("", "C, A", "A, A", "D", "A,C"):
        assert not pattern.fullmatch(bad), bad


def test_vllm_helpers_and_missing_package(monkeypatch, tmp_path: Path, env) -> None:
    assert (max_lora_rank(16), max_lora_rank(20)) == (16, 32)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 16, "use_dora": True}))
    with pytest.raises(ValueError, match="DoRA"):
        adapter_rank(tmp_path)
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="prediction.backend 'vllm' needs the vllm package"):
        predict("vllm", env["base"], None, [env["oeq"]], [tmp_path / "o.parquet"], 4, 6, "v1")


def test_unknown_backend_lists_valid_ones(tmp_path: Path, env) -> None:
    with pytest.raises(ValueError, match=r"valid: \['transformers', 'vllm'\]"):
        predict("tgi", env["base"], None, [env["oeq"]], [tmp_path / "o.parquet"], 4, 6, "v1")


def test_adapter_changes_the_predictions(env, predictions, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(env["base"])
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    out = tmp_path / "mcqu.parquet"
    predict("transformers", env["base"], tmp_path / "adapter", [env["mcqu"]], [out], 4, 6, "v1")
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in predictions["mcqu"]]
    assert [r["letter_probs"] for r in rows] != [r["letter_probs"] for r in predictions["mcqu"]]


def test_empty_test_set_gives_an_empty_file(env, tmp_path: Path) -> None:
    write_records([], tmp_path / "empty.parquet")
    out = tmp_path / "pred" / "empty.parquet"
    predict("transformers", env["base"], None, [tmp_path / "empty.parquet"], [out], 4, 6, "v1")
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names == COLUMNS
