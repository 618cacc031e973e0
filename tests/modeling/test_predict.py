"""Prediction backends on the tiny model: output contract, constrained decoding, determinism."""

from __future__ import annotations

import json
import math
import re
import sys
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoTokenizer

from medinjection.evaluation.parsing import parse_letters
from medinjection.manifests import write_manifest
from medinjection.modeling.decoding import (
    LetterConstraint,
    LetterTokens,
    letter_tokens,
    multi_answer_regex,
)
from medinjection.modeling.transformers_backend import TransformersPredictor
from medinjection.modeling.vllm_backend import (
    adapter_rank,
    constrained_request,
    greedy_request,
    max_lora_rank,
    probs_request,
)
from medinjection.prompts import messages_hash, prompt_messages
from medinjection.records import read_records, write_records
from medinjection.settings import PositionBiasSettings, TinyModelSettings
from medinjection.stages.predict import max_new_tokens, parsed_answer, predict, prompt_items
from medinjection.stages.train import prepare_base_model
from tests.conftest import load_script
from tests.support.manifests import manifest_beside, record_folder
from tests.support.predict import mc_record, predict_testsets, prediction
from tests.support.tiny_spec import tiny_spec

TINY = tiny_spec(seed=3)
COLUMNS = [
    "id",
    "task",
    "permutation",
    "option_order",
    "prompt_hash",
    "letters",
    "gold",
    "greedy_output",
    "greedy_parsed",
    "constrained_output",
    "constrained_parsed",
    "letter_probs",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    files = {}
    for name, records in predict_testsets().items():
        files[name] = root / "testsets" / f"{name}.parquet"
        write_records(records, files[name])
    prepare_base_model(
        "tiny", root / "base", list(files.values()), tiny=TinyModelSettings.from_dict(TINY),
        out_manifest=manifest_beside(root / "base"),
    )  # fmt: skip
    return {"root": root, "base": root / "base", **files}


def _run_script(
    env: dict[str, Path],
    out_dir: Path,
    backend: str = "transformers",
    max_model_len=None,
    model_manifest: Path | None = None,
) -> list[Path]:
    script = load_script("predict")
    outs = [out_dir / f"{name}.parquet" for name in ("mcqu", "mcq", "oeq")]
    permuted = [out_dir / "permuted" / f"{name}.parquet" for name in ("mcqu", "mcq")]
    testsets = out_dir.parent / f"{out_dir.name}.testsets.manifest.json"  # test_sets' manifest
    write_manifest(testsets, "test_sets", [env[n] for n in ("mcqu", "mcq", "oeq")])
    smk = types.SimpleNamespace(  # no `adapter` input: the base model row
        input=types.SimpleNamespace(
            model=str(env["base"]),
            testsets=[str(env[n]) for n in ("mcqu", "mcq", "oeq")],
            manifests=str(testsets),
            model_manifests=[str(model_manifest or manifest_beside(env["base"]))],
        ),
        output=types.SimpleNamespace(
            predictions=[str(p) for p in outs],
            permuted=[str(p) for p in permuted],
            manifest=str(out_dir / "manifest.json"),
        ),
        params=types.SimpleNamespace(
            prediction=prediction(backend, 4, 6, max_model_len).to_dict(),
            prompt_version="v1",
            position_bias={"permutations": 2, "seed": 7},
            protocol="letters",  # these tests hold the letters protocol (test_protocol.py: both)
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


def test_the_script_checks_the_model_folder_against_the_rule_s_manifest(env, tmp_path) -> None:
    from medinjection.manifests import ManifestMismatch

    other = tmp_path / "other"  # a manifest that vouches for another folder, not this model
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(ManifestMismatch, match=rf"^{env['base']}/\S+: not listed in "):
        _run_script(env, tmp_path / "run", model_manifest=record_folder(other, "train"))
    assert not (tmp_path / "run" / "mcqu.parquet").exists()  # refused before predicting


def test_mcqu_constrained_answer_is_one_allowed_letter(predictions) -> None:
    for row in predictions["mcqu"]:
        assert row["constrained_output"] in row["letters"].split(",")


def test_mcq_constrained_output_uses_only_allowed_letters_once(predictions) -> None:
    for row in predictions["mcq"]:
        text = row["constrained_output"]
        assert re.fullmatch(r"[A-E,\s]*", text), text
        letters = re.findall(r"[A-E]", text)
        assert len(letters) == len(set(letters))


def test_predictions_are_deterministic(predictions, env) -> None:
    outs = _run_script(env, env["root"] / "run2")
    again = {p.stem: pq.read_table(p).to_pylist() for p in outs}
    assert again == predictions


def _hf_generate(predictor, item, budget: int, processor=None) -> list[int]:
    """Reference: transformers' own greedy `generate` on one unpadded prompt."""
    from transformers import LogitsProcessorList

    ids = torch.tensor([predictor.prompt_ids([item])[0]])
    out = predictor.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=budget,
        eos_token_id=list(predictor.stops),
        pad_token_id=predictor.pad_id,
        logits_processor=LogitsProcessorList([processor]) if processor else None,
    )
    return out[0, ids.shape[1] :].tolist()


def _reference(predictor, item) -> tuple[str, str | None]:
    """(greedy, constrained) of one item through transformers' generate."""
    budget = item.max_new_tokens
    greedy = predictor.decode(_hf_generate(predictor, item, budget), budget)
    if item.record.task == "oeq":
        return greedy, None
    multi = item.record.task == "mcq"
    constraint = LetterConstraint(
        [letter_tokens(predictor.tokenizer, item.letters)],
        prompt_length=len(predictor.prompt_ids([item])[0]),
        separators=predictor.separators if multi else (),
        stops=predictor.stops if multi else (),
    )
    return greedy, predictor.decode(_hf_generate(predictor, item, budget, constraint), budget)


def test_mcqu_one_forward_pass_equals_constrained_generate(env) -> None:
    predictor = TransformersPredictor(env["base"], None, batch_size=4, protocol="letters")
    items = prompt_items(read_records(env["mcqu"]), "v1", 6)
    lengths = {len(ids) for ids in predictor.prompt_ids(items)}
    assert len(lengths) > 1  # 4 to 6 options: batches are padded
    before = predictor.timings["decode"]
    preds = predictor.predict(items)
    assert predictor.timings["decode"] == before  # no decode step: one forward pass per batch
    assert [(p.greedy, p.constrained) for p in preds] == [_reference(predictor, i) for i in items]
    assert all(p.constrained in i.letters for p, i in zip(preds, items, strict=True))


def test_batched_engine_equals_per_item_generate(env) -> None:
    # the engine's shared prefill + decode loop against transformers' generate, item by item
    predictor = TransformersPredictor(env["base"], None, batch_size=3, protocol="letters")
    records = [*read_records(env["mcq"]), *read_records(env["oeq"]), *read_records(env["mcqu"])]
    items = prompt_items(records, "v1", 6)
    preds = predictor.predict(items)
    assert [(p.greedy, p.constrained) for p in preds] == [_reference(predictor, i) for i in items]
    greedy_only = predictor.predict(items, constrained=False)
    assert [p.greedy for p in greedy_only] == [p.greedy for p in preds]
    assert all(p.constrained is None for p in greedy_only)
    assert [p.letter_probs for p in greedy_only] == [p.letter_probs for p in preds]


def test_batches_group_one_task_longest_prompts_first(env) -> None:
    predictor = TransformersPredictor(env["base"], None, batch_size=4, protocol="letters")
    records = [*read_records(env["mcqu"]), *read_records(env["mcq"])]
    items = prompt_items(records, "v1", 6)
    ids = predictor.prompt_ids(items)
    batches = predictor.batches(items, ids)
    assert sorted(i for batch in batches for i in batch) == list(range(len(items)))
    for batch in batches:
        assert len(batch) <= 4 and len({items[i].record.task for i in batch}) == 1
    mcqu = [len(ids[i]) for batch in batches for i in batch if items[i].record.task == "mcqu"]
    assert mcqu == sorted(mcqu, reverse=True)


def test_parsed_columns_follow_the_strict_parser(predictions) -> None:
    for name in ("mcqu", "mcq"):
        for row in predictions[name]:
            letters = row["letters"].split(",")
            for column in ("greedy", "constrained"):
                parsed = parse_letters(row[f"{column}_output"], letters, single=name == "mcqu")
                expected = None if parsed is None else ",".join(sorted(parsed))
                assert row[f"{column}_parsed"] == expected
            if name == "mcqu":  # exactly one letter by construction
                assert row["constrained_parsed"] == row["constrained_output"]
    assert all(r["greedy_parsed"] is r["constrained_parsed"] is None for r in predictions["oeq"])
    assert all(r["permutation"] == 0 for rows in predictions.values() for r in rows)
    assert predictions["mcq"][0]["option_order"] == "A,B,C,D,E"
    assert predictions["oeq"][0]["option_order"] == ""


@pytest.mark.parametrize(
    ("task", "output", "expected"),
    [
        ("mcqu", "b", "B"),
        ("mcqu", " (C).", "C"),
        ("mcqu", "A, C", None),
        ("mcqu", "E", None),  # not an option of this item
        ("mcq", "C, A", "A,C"),
        ("mcq", "A et C", None),
        ("mcq", "", None),
        ("oeq", "A", None),
    ],
)
def test_parsed_answer_hand_cases(task: str, output: str, expected: str | None) -> None:
    record = mc_record(0, task, 4, "A") if task != "oeq" else predict_testsets()["oeq"][0]
    item = prompt_items([record], "v1", 6)[0]
    assert parsed_answer(output, item) == expected


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
    sets = predict_testsets()
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
        predict(
            prediction("vllm", 4, 6),
            env["base"],
            None,
            [env["oeq"]],
            [tmp_path / "o.parquet"],
            "v1",
        )


def test_unknown_backend_lists_valid_ones(tmp_path: Path, env) -> None:
    with pytest.raises(ValueError, match=r"valid: \['transformers', 'vllm'\]"):
        predict(
            prediction("tgi", 4, 6), env["base"], None, [env["oeq"]], [tmp_path / "o.parquet"], "v1"
        )


def test_adapter_changes_the_predictions(env, predictions, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(env["base"])
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    out = tmp_path / "mcqu.parquet"
    predict(
        prediction("transformers", 4, 6), env["base"], tmp_path / "adapter", [env["mcqu"]], [out],
        "v1", protocol="letters",
    )  # fmt: skip
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in predictions["mcqu"]]
    assert [r["letter_probs"] for r in rows] != [r["letter_probs"] for r in predictions["mcqu"]]


def test_empty_test_set_gives_an_empty_file(env, tmp_path: Path) -> None:
    write_records([], tmp_path / "empty.parquet")
    out = tmp_path / "pred" / "empty.parquet"
    predict(
        prediction("transformers", 4, 6),
        env["base"],
        None,
        [tmp_path / "empty.parquet"],
        [out],
        "v1",
    )
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names == COLUMNS


def test_permuted_reruns_written_by_the_script(predictions, env) -> None:
    originals = {r.id: r for r in read_records(env["mcq"])}
    rows = pq.read_table(env["root"] / "run1" / "permuted" / "mcq.parquet").to_pylist()
    assert pq.read_table(env["root"] / "run1" / "permuted" / "mcq.parquet").column_names == COLUMNS
    assert [(r["permutation"], r["id"]) for r in rows] == [
        (k, rid) for k in (1, 2) for rid in originals
    ]
    hashes = {r["id"]: r["prompt_hash"] for r in predictions["mcq"]}
    for row in rows:
        record = originals[row["id"]]
        order = row["option_order"].split(",")
        assert sorted(order) == list(record.option_letters()) and order != list("ABCDE")
        gold = {order["ABCDE".index(letter)] for letter in row["gold"].split(",")}
        assert gold == set(record.answer_letters())  # the remapped gold names the same options
        assert row["prompt_hash"] != hashes[row["id"]]
    assert not (env["root"] / "run1" / "permuted" / "oeq.parquet").exists()


def test_permuted_outputs_need_a_matching_test_set(env, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no test set of the same name"):
        predict(
            prediction("transformers", 4, 6), env["base"], None, [env["mcq"]],
            [tmp_path / "mcq.parquet"], "v1",
            permuted_files=[tmp_path / "permuted" / "other.parquet"],
            position_bias=PositionBiasSettings(permutations=1, seed=0),
        )  # fmt: skip


class _FakeCompletion:
    def __init__(self, text: str, logprobs=None, token_ids=()) -> None:
        self.text, self.logprobs, self.token_ids = text, logprobs, list(token_ids)


class _FakeLLM:
    """Stands in for vllm.LLM: answers each request from its SamplingParams."""

    calls: list = []
    engines: list = []

    def __init__(self, model: str, **engine_args) -> None:
        self.engine_args = engine_args
        type(self).engines.append(self)
        self.tokenizer = AutoTokenizer.from_pretrained(model)

    def get_tokenizer(self):
        return self.tokenizer

    def _completion(self, text: str, logprobs=None) -> _FakeCompletion:
        # the backend decodes the token ids (vLLM's text can hold back trailing bytes)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return _FakeCompletion(text, logprobs, [*ids, self.tokenizer.eos_token_id])

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        type(self).calls.append((list(prompts), list(params), lora_request))
        outs = []
        for p in params:
            if p.kwargs.get("logprobs"):  # the letter-probability step
                ids = p.kwargs["allowed_token_ids"]
                logprobs = [
                    {i: types.SimpleNamespace(logprob=-float(n)) for n, i in enumerate(ids)}
                ]
                outs.append(self._completion("A", logprobs))
            elif "allowed_token_ids" in p.kwargs or "structured_outputs" in p.kwargs:
                outs.append(self._completion(" B " if p.kwargs["max_tokens"] == 1 else "A, B"))
            else:
                outs.append(self._completion(" réponse libre "))
        return [types.SimpleNamespace(outputs=[o]) for o in outs]


class _Recorder:
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams, vllm.__version__ = _FakeLLM, _Recorder, "fake"
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = _Recorder
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda *args: ("lora", *args)
    for name, module in {
        "vllm": vllm,
        "vllm.sampling_params": sampling,
        "vllm.lora": lora,
        "vllm.lora.request": request,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    _FakeLLM.calls, _FakeLLM.engines = [], []
    return _FakeLLM


def test_vllm_requests_follow_the_protocol(env) -> None:
    mcqu, mcq, oeq = (
        prompt_items(read_records(env[n]), "v1", 512)[0] for n in ("mcqu", "mcq", "oeq")
    )
    tokens = LetterTokens(letters=("A", "B"), bare=(10, 11), variants=((10, 20), (11, 21)))
    assert greedy_request(oeq) == {"temperature": 0.0, "max_tokens": 512}
    assert greedy_request(mcqu) == {"temperature": 0.0, "max_tokens": 1}
    # official: one static allowed set, 1 step (MCQU) or 2 x options steps (MCQ)
    allowed = (2, 5, 10, 11, 20, 21)
    assert constrained_request(mcqu, tokens, "official", allowed) == {
        "temperature": 0.0,
        "max_tokens": 1,
        "allowed_token_ids": [2, 5, 10, 11, 20, 21],
    }
    assert constrained_request(mcq, tokens, "official", allowed) == {
        "temperature": 0.0,
        "max_tokens": 10,
        "allowed_token_ids": [2, 5, 10, 11, 20, 21],
    }
    with pytest.raises(ValueError, match="allowed ids"):
        constrained_request(mcqu, tokens, "official")
    # letters: one step over the letter tokens (MCQU), a regex of distinct letters (MCQ)
    assert constrained_request(mcqu, tokens, "letters") == {
        "temperature": 0.0,
        "max_tokens": 1,
        "allowed_token_ids": [10, 11, 20, 21],
    }
    regex = constrained_request(mcq, tokens, "letters")
    assert regex["max_tokens"] == 10 and regex["temperature"] == 0.0
    assert regex["structured_outputs"] == {"regex": multi_answer_regex(list("ABCDE"))}
    for protocol in ("official", "letters"):
        with pytest.raises(ValueError, match="open questions"):
            constrained_request(oeq, tokens, protocol, allowed)
    assert probs_request(tokens, "letters") == {
        "temperature": 0.0,
        "max_tokens": 1,
        "allowed_token_ids": [10, 11],
        "logprobs": 2,
    }
    assert probs_request(tokens, "official") == {
        "temperature": 0.0,
        "max_tokens": 1,
        "allowed_token_ids": [10, 11, 20, 21],
        "logprobs": 4,
    }


def test_vllm_backend_writes_the_same_schema(env, fake_vllm, tmp_path: Path) -> None:
    names = ("mcqu", "mcq", "oeq")
    outs = [tmp_path / f"{n}.parquet" for n in names]
    permuted = [tmp_path / "permuted" / "mcqu.parquet"]
    files = [env[n] for n in names]
    predict(
        prediction("vllm", 4, 7), env["base"], None, files, outs, "v1", protocol="letters",
        permuted_files=permuted, position_bias=PositionBiasSettings(permutations=1, seed=3),
    )  # fmt: skip
    tables = {n: pq.read_table(p) for n, p in zip(names, outs, strict=True)}
    assert all(t.column_names == COLUMNS for t in tables.values())
    mcqu, mcq, oeq = (tables[n].to_pylist() for n in names)
    assert {(r["constrained_output"], r["constrained_parsed"]) for r in mcqu} == {("B", "B")}
    assert {(r["greedy_output"], r["greedy_parsed"]) for r in mcqu} == {("réponse libre", None)}
    assert {(r["constrained_output"], r["constrained_parsed"]) for r in mcq} == {("A, B", "A,B")}
    probs = json.loads(mcq[0]["letter_probs"])  # logprobs 0, -1, -2, ... renormalised
    assert probs["A"] / probs["B"] == pytest.approx(math.e) and sum(
        probs.values()
    ) == pytest.approx(1)
    assert all(r["constrained_output"] is r["letter_probs"] is None for r in oeq)
    assert [r["greedy_output"] for r in oeq] == ["réponse libre"] * 3
    assert pq.read_table(permuted[0]).column_names == COLUMNS
    first_call_params = [p.kwargs for p in fake_vllm.calls[0][1]]
    assert all(p["temperature"] == 0.0 and p["max_tokens"] >= 1 for p in first_call_params)
    assert len(first_call_params) == 3 * 9  # greedy, constrained and letter-probability runs
    # token-id prompts, the ids the transformers engine builds (no special token added twice)
    engine_ids = TransformersPredictor(env["base"], None, 4).prompt_ids(
        prompt_items(read_records(env["mcqu"]), "v1", 7)
    )
    sent = fake_vllm.calls[0][0]
    assert all(set(prompt) == {"prompt_token_ids"} for prompt in sent)
    assert [p["prompt_token_ids"] for p in sent[::3][: len(engine_ids)]] == engine_ids


def _longest_need(env: dict[str, Path], max_new_tokens_oeq: int) -> tuple[str, int]:
    """(id, prompt tokens + budget) of the item needing the most context, counted independently
    of the backend: the chat template rendered as text, tokenized without added special tokens."""
    tokenizer = AutoTokenizer.from_pretrained(env["base"])
    needs = []
    for name in ("mcqu", "mcq", "oeq"):
        for item in prompt_items(read_records(env[name]), "v1", max_new_tokens_oeq):
            text = tokenizer.apply_chat_template(
                item.messages, tokenize=False, add_generation_prompt=True
            )
            ids = tokenizer.encode(text, add_special_tokens=False)
            needs.append((item.record.id, len(ids) + item.max_new_tokens))
    return max(needs, key=lambda need: need[1])


def test_vllm_engine_gets_max_model_len_from_the_rule(env, fake_vllm, tmp_path: Path) -> None:
    _, need = _longest_need(env, 6)
    outs = _run_script(env, tmp_path / "run", backend="vllm", max_model_len=need)  # exactly fits
    assert [engine.engine_args["max_model_len"] for engine in fake_vllm.engines] == [need]
    sizes = [len(read_records(env[n])) for n in ("mcqu", "mcq", "oeq")]
    assert [pq.read_table(out).num_rows for out in outs] == sizes
    _run_script(env, tmp_path / "default", backend="vllm", max_model_len=None)
    assert "max_model_len" not in fake_vllm.engines[-1].engine_args  # vLLM's own default


def test_vllm_refuses_an_item_over_max_model_len_before_generating(
    env, fake_vllm, tmp_path: Path
) -> None:
    item_id, need = _longest_need(env, 7)
    names = ("mcqu", "mcq", "oeq")
    outs = [tmp_path / f"{n}.parquet" for n in names]
    with pytest.raises(ValueError, match="prediction.max_model_len") as error:
        predict(
            prediction("vllm", 4, 7, max_model_len=need - 1), env["base"], None,
            [env[n] for n in names], outs, "v1",
        )  # fmt: skip
    assert f"item {item_id!r} needs" in str(error.value)
    assert f"= {need} > prediction.max_model_len {need - 1}" in str(error.value)
    assert fake_vllm.calls == [] and not any(out.exists() for out in outs)  # nothing generated


def test_transformers_backend_is_held_to_max_model_len(env, tmp_path: Path) -> None:
    # the same check as vLLM's: the same items pass or fail on both backends
    item_id, need = _longest_need(env, 6)
    names = ("mcqu", "mcq", "oeq")
    files, outs = [env[n] for n in names], [tmp_path / f"{n}.parquet" for n in names]
    with pytest.raises(ValueError, match=f"item {item_id!r} needs .* > prediction.max_model_len"):
        predict(prediction("transformers", 4, 6, need - 1), env["base"], None, files, outs, "v1")
    assert not any(out.exists() for out in outs)
    predict(prediction("transformers", 4, 6, need), env["base"], None, files, outs, "v1")
    assert all(out.exists() for out in outs)


def test_each_prompt_is_tokenized_once(env, monkeypatch, tmp_path: Path) -> None:
    # the stage's context check and the decoding share one tokenization of every prompt (the
    # permuted reruns included): a backend that counts what it tokenizes and what it is given
    from medinjection.modeling import backends
    from medinjection.modeling.types import Prediction

    tokenized: list[str] = []
    given: list[int] = []

    class Counting:
        def __init__(self, *args) -> None:
            pass

        def prompt_ids(self, items):
            tokenized.extend(f"{item.record.id}/{item.permutation}" for item in items)
            return [[7] * (1 + len(item.record.id)) for item in items]

        def predict(self, items, prompt_ids=None):
            assert prompt_ids is not None, "the stage must hand over the ids it checked"
            given.extend(len(row) for row in prompt_ids)
            return [Prediction("A", "A", {"A": 1.0}) for _ in items]

    monkeypatch.setitem(backends.BACKENDS, "transformers", Counting)
    names = ("mcqu", "mcq", "oeq")
    files, outs = [env[n] for n in names], [tmp_path / f"{n}.parquet" for n in names]
    permuted = [tmp_path / "permuted" / f"{n}.parquet" for n in ("mcqu", "mcq")]
    predict(prediction("transformers", 4, 6), env["base"], None, files, outs, "v1", "letters",
            permuted, PositionBiasSettings(permutations=2, seed=7))  # fmt: skip
    items = sum(pq.read_metadata(path).num_rows for path in [*outs, *permuted])
    assert len(tokenized) == items == len(set(tokenized)) == len(given)
    # the transformers engine checks the ids it is given against its items
    predictor = TransformersPredictor(env["base"], None, 4)
    with pytest.raises(ValueError, match="1 rows of prompt ids for 2 items"):
        predictor.predict(prompt_items(read_records(env["mcqu"]), "v1", 6)[:2], prompt_ids=[[1]])


def test_shared_prefix_pass_changes_nothing(env, monkeypatch) -> None:
    from medinjection.modeling import transformers_backend

    assert transformers_backend.shared_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert transformers_backend.shared_prefix([[1, 2], [1, 2]]) == 1  # one own token each
    predictor = TransformersPredictor(env["base"], None, batch_size=4, protocol="letters")
    records = [*read_records(env["mcq"]), *read_records(env["oeq"]), *read_records(env["mcqu"])]
    items = prompt_items(records, "v1", 6)
    assert transformers_backend.shared_prefix(predictor.prompt_ids(items)) >= 16
    with_prefix = predictor.predict(items)
    monkeypatch.setattr(transformers_backend, "MIN_SHARED_PREFIX", 10**6)
    without = predictor.predict(items)
    assert [(p.greedy, p.constrained) for p in with_prefix] == [
        (p.greedy, p.constrained) for p in without
    ]
    for a, b in zip(with_prefix, without, strict=True):
        if a.letter_probs is not None:
            assert a.letter_probs == pytest.approx(b.letter_probs, abs=1e-5)


def _unpruned(predictor: TransformersPredictor) -> None:
    """Put the model's own last layer back (the engine without last-layer pruning)."""
    predictor.model.model.layers[-1] = predictor.last_layer.layer
    predictor.last_layer = None


def test_last_layer_pruning_changes_nothing(env) -> None:
    pruned = TransformersPredictor(env["base"], None, batch_size=4, protocol="letters")
    assert pruned.last_layer is not None  # the tiny model is a Qwen3: pruning is on
    full = TransformersPredictor(env["base"], None, batch_size=4, protocol="letters")
    _unpruned(full)
    records = [*read_records(env["mcq"]), *read_records(env["oeq"]), *read_records(env["mcqu"])]
    items = prompt_items(records, "v1", 6)
    by_length = {len(ids): ids for ids in pruned.prompt_ids(items)}
    rows = list(by_length.values())[:4]
    assert len(rows) > 1  # padded rows: each row keeps its own last position
    for use_cache in (False, True):
        a, b = pruned.prefill(rows, use_cache)[0], full.prefill(rows, use_cache)[0]
        assert torch.allclose(a, b, atol=1e-5)
        assert a.argmax(-1).tolist() == b.argmax(-1).tolist()
    with_pruning, without = pruned.predict(items), full.predict(items)
    assert [(p.greedy, p.constrained) for p in with_pruning] == [
        (p.greedy, p.constrained) for p in without
    ]
    for a, b in zip(with_pruning, without, strict=True):
        if a.letter_probs is not None:
            assert a.letter_probs == pytest.approx(b.letter_probs, abs=1e-5)
    assert pruned.last_layer.positions is None  # switched off after each prefill


def test_preallocated_cache_layer_writes_in_place() -> None:
    from medinjection.modeling.transformers_backend import PreallocatedLayer

    keys, values = torch.randn(2, 1, 3, 4), torch.randn(2, 1, 3, 4)
    layer = PreallocatedLayer(keys, values, extra=2)
    step = torch.randn(2, 1, 1, 4)
    k, v = layer.update(step, step + 1)
    assert torch.equal(k, torch.cat([keys, step], dim=2))
    assert torch.equal(v, torch.cat([values, step + 1], dim=2))
    assert layer.get_seq_length() == 4
    layer.update(step, step)
    with pytest.raises(RuntimeError, match="cannot hold 6"):
        layer.update(step, step)
