"""LLM judge: prompt, parsing rules, local backend on a tiny random model, openai/vllm plumbing."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import types
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from medinjection.evaluation import judge as judge_mod
from medinjection.evaluation.judge import (
    JUDGE_SYSTEM_PROMPT,
    judge_messages,
    load_judge_prompt,
    parse_judge_output,
)
from medinjection.llm import vllm_server
from medinjection.llm.vllm_server import vllm_command, wait_until_ready
from medinjection.prompts import render_user
from medinjection.records import read_records
from medinjection.settings import EndpointSettings
from medinjection.stages.judge import judge_predictions
from medinjection.stages.judge_backends import JudgeRun, run_judge
from tests.conftest import load_script
from tests.support.judge import candidate, write_oeq_inputs

ROOT = Path(__file__).resolve().parents[2]
PARAPHRASE = ROOT / "config" / "prompts" / "judge_equivalence_paraphrase.txt"
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SENTENCES = [
    "Question: Quel est le traitement ? Candidate_answer: adrénaline Ground_truth: adrénaline 0 1",
    "Le patient présente une hépatite virale aiguë et une fièvre à 39 degrés.",
    "You are a medical evaluator. Reply with the single digit 0 or 1.",
]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 1-layer Qwen3 with a byte-level BPE tokenizer and a ChatML template, built here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(SENTENCES * 5, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"], model_max_length=4096,
    )  # fmt: skip
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, intermediate_size=64, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("tiny_judge")
    Qwen3ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_shipped_prompt_file_is_the_paraphrase_and_says_so():
    # the default judge.prompt_file holds the package's paraphrase byte for byte (the judge
    # requests, hence the LLM cache keys, are those of the earlier built-in prompt)
    assert load_judge_prompt(PARAPHRASE) == JUDGE_SYSTEM_PROMPT == load_judge_prompt(None)
    readme = (PARAPHRASE.parent / "README.md").read_text(encoding="utf-8")
    assert "It is a paraphrase written for this project" in readme
    assert "official prompt" not in (ROOT / "config" / "README.md").read_text(encoding="utf-8")


def test_prompt_file_errors_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="judge.prompt_file .* does not exist"):
        load_judge_prompt(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match="judge.prompt_file .* is empty"):
        load_judge_prompt(tmp_path / "empty.txt")


def test_judge_messages_format():
    messages = judge_messages("Q ?", "cand", "gold")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "Question: Q ?\nCandidate_answer: cand\nGround_truth: gold"
    system = messages[0]["content"]
    assert "0 = not equivalent" in system and "1 = equivalent" in system
    assert "essential" in system


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        ("1", 1.0),
        ("0", 0.0),
        (" 1\n", 1.0),
        ("Score: 0", 0.0),
        ("Réponse : 0/1", 0.0),  # first standalone digit wins
        ("10", 1.0),  # no standalone 0/1: falls back to the first [01]
        ("score2", None),
        ("équivalent", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_judge_output(raw, score):
    assert parse_judge_output(raw) == score


def _messages(n: int) -> list[list[dict[str, str]]]:
    return [
        judge_messages(f"Question {i} " + "sur le foie " * i, "hépatite " * (i + 1), "hépatite")
        for i in range(n)
    ]


def test_local_judge_left_padding_matches_unpadded_forward(tiny_model_dir):
    import torch

    judge = judge_mod.load_local_judge(tiny_model_dir)
    messages = _messages(5)  # prompts of different lengths: the batch is left-padded
    batched = judge_mod.digit_logits(judge, messages)
    single = torch.cat([judge_mod.digit_logits(judge, [m]) for m in messages])
    assert batched.shape == (5, 2)
    assert torch.allclose(batched, single, atol=1e-4)
    # the padded batch really was padded (otherwise this test proves nothing)
    texts = [judge.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
             for m in messages]  # fmt: skip
    lengths = {len(judge.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts}
    assert len(lengths) == 5


def test_local_judge_verdicts(tiny_model_dir):
    import torch

    messages = _messages(6)
    verdicts = run_judge(messages, JudgeRun(candidate("local", "tiny")), tiny_model_dir)
    judge = judge_mod.load_local_judge(tiny_model_dir)
    expected = torch.cat([judge_mod.digit_logits(judge, [m]) for m in messages]).argmax(-1)
    assert verdicts == [(float(p), str(p)) for p in expected.tolist()]


def _input_manifests(tmp_path, predictions, testset) -> list[str]:
    """The manifests predict and test_sets write, which the judge rule checks its inputs against."""
    from medinjection.manifests import write_manifest

    paths = [tmp_path / "predict.manifest.json", tmp_path / "testsets.manifest.json"]
    write_manifest(paths[0], "predict", [predictions])
    write_manifest(paths[1], "test_sets", [testset])
    return [str(p) for p in paths]


def test_judge_script_local_backend(tiny_model_dir, tmp_path):
    predictions, testset = write_oeq_inputs(tmp_path)
    out = tmp_path / "judge" / "base" / "mediqal-oeq.parquet"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(predictions=[str(predictions)], testsets=[str(testset)],
                                    model=str(tiny_model_dir), prompt=str(PARAPHRASE),
                                    manifests=_input_manifests(tmp_path, predictions, testset)),
        output=types.SimpleNamespace(judgments=[str(out)], manifest=str(out.parent / "m.json")),
        params=types.SimpleNamespace(
            candidates={"tiny": candidate("local", "base").to_dict()}, endpoints={},
            mode="replay", replay_file=None, select="tiny", cache_path=str(tmp_path / "c"),
            prompt_version="v1"),
        log=[str(tmp_path / "judge.log")],
    )  # fmt: skip
    load_script("judge").main(smk)
    table = pq.read_table(out)
    assert table.schema.names == ["id", "score", "raw", "judge", "error"]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["mediqal:0", "mediqal:1", "mediqal:2"]
    assert all(r["score"] in (0.0, 1.0) and r["judge"] == "base" for r in rows)


class _FakeChat:
    """Stands in for llm.chat.ChatFn: answers with `reply`, records calls and closes."""

    def __init__(self, reply, calls: list | None, sent: list | None, model: str) -> None:
        self.reply, self.calls, self.sent, self.model = reply, calls, sent, model
        self.closed = 0

    def __call__(self, conversations):
        if self.sent is not None:
            self.sent.extend(conversations)
        if self.calls is not None:
            self.calls.append(self.model)
        return self.reply(conversations)

    def close(self) -> None:
        self.closed += 1


def _fake_chat(
    monkeypatch, replies_by_model: dict, calls: list | None = None, sent: list | None = None
) -> list[_FakeChat]:
    """Replace the LLM client: each judge model answers with its own function of the prompt;
    the chat functions made are returned (in a list filled as they are made)."""
    made: list[_FakeChat] = []

    def fake_make_chat_fn(**kwargs):
        def reply(conversations):
            return [replies_by_model[kwargs["model"]](c[1]["content"]) for c in conversations]

        made.append(_FakeChat(reply, calls, sent, kwargs["model"]))
        return made[-1]

    monkeypatch.setattr("medinjection.llm.chat.make_chat_fn", fake_make_chat_fn)
    return made


ENDPOINT = EndpointSettings(base_url="http://x/v1", api_key_env="X")


def test_judge_script_runs_the_auto_selected_candidate(tmp_path, monkeypatch):
    from medinjection.stages.judge import resolve_judge

    predictions, testset = write_oeq_inputs(tmp_path)
    calls: list = []
    sent: list = []
    made = _fake_chat(monkeypatch, {"good": lambda _: "1", "bad": lambda _: "0"}, calls, sent)
    selection = tmp_path / "judge_selection.json"
    selection.write_text(json.dumps({"selected": "good"}))
    # judge.prompt_file: a user's own prompt text, sent verbatim (only the final newline goes)
    prompt = tmp_path / "their_prompt.txt"
    prompt.write_text("  Exact wording, kept as is.\n\nSecond line: 0 or 1 \n", encoding="utf-8")
    out = tmp_path / "judge.parquet"
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(predictions=[str(predictions)], testsets=[str(testset)],
                                    selection=str(selection), prompt=str(prompt),
                                    manifests=_input_manifests(tmp_path, predictions, testset)),
        output=types.SimpleNamespace(judgments=[str(out)], manifest=str(tmp_path / "m.json")),
        params=types.SimpleNamespace(
            candidates={"bad": candidate("openai", "bad").to_dict(),
                        "good": candidate("openai", "good").to_dict()},
            endpoints={"openai": ENDPOINT.to_dict()}, mode="replay", replay_file=None,
            select="auto", cache_path=str(tmp_path / "c"), prompt_version="v1"),
        log=[str(tmp_path / "judge.log")],
    )  # fmt: skip
    load_script("judge").main(smk)
    rows = pq.read_table(out).to_pylist()
    assert calls == ["good"] and [r["score"] for r in rows] == [1.0, 1.0, 1.0]
    assert [chat.closed for chat in made] == [1]  # one chat function, closed once
    systems = {conversation[0]["content"] for conversation in sent}
    assert systems == {"  Exact wording, kept as is.\n\nSecond line: 0 or 1 "}
    assert {r["judge"] for r in rows} == {"good"}
    with pytest.raises(FileNotFoundError, match="judge_selection.json"):
        resolve_judge({"good": candidate("openai", "good")}, "auto", None)
    with pytest.raises(KeyError, match="not among the candidates"):
        resolve_judge({"bad": candidate("openai", "bad")}, "auto", selection)
    assert resolve_judge({"bad": candidate("local", "x")}, "bad", None) == (
        "bad",
        candidate("local", "x"),
    )


def test_openai_backend_uses_client_and_parses(tmp_path, monkeypatch):
    predictions, testset = write_oeq_inputs(tmp_path)
    calls: dict = {}

    def fake_make_chat_fn(**kwargs):
        calls.update(kwargs)

        def reply(conversations):
            calls["conversations"] = conversations
            return ["1", "Score : 0", "je ne sais pas"]

        return _FakeChat(reply, None, None, kwargs["model"])

    monkeypatch.setattr("medinjection.llm.chat.make_chat_fn", fake_make_chat_fn)
    out = tmp_path / "judge.parquet"
    run = JudgeRun(candidate("openai", "medgemma"), ENDPOINT, "replay", "rec.jsonl", "c.sqlite")
    judge_predictions(run, None, [predictions], [testset], [out], "v1")
    assert [r["score"] for r in pq.read_table(out).to_pylist()] == [1.0, 0.0, None]
    assert calls["model"] == "medgemma" and calls["temperature"] == 0.0
    assert calls["max_tokens"] == 1 and calls["mode"] == "replay"
    assert calls["endpoint"] == {"base_url": "http://x/v1", "api_key_env": "X"}
    first = read_records(testset)[0]
    assert calls["conversations"][0][1]["content"] == (
        f"Question: {render_user(first, 'v1')}\nCandidate_answer: \nGround_truth: Hépatite 0"
    )


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(KeyError, match="vllm_server"):
        run_judge(_messages(1), JudgeRun(replace(candidate("local", "x"), backend="hf")), None)  # type: ignore[arg-type]


def test_vllm_command_rendering():
    assert vllm_command(Path("/models/medgemma"), "medgemma-27b", 18765) == [
        "vllm", "serve", "/models/medgemma", "--served-model-name", "medgemma-27b",
        "--host", "127.0.0.1", "--port", "18765", "--generation-config", "vllm",
        "--max-model-len", "8192",
    ]  # fmt: skip


class _Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"data": [{"id": "judge"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_wait_until_ready_against_fake_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Models)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_until_ready(f"http://127.0.0.1:{server.server_port}/v1", timeout_s=5, poll_s=0.1)
        # another job's server on the port (serving another model) is not ours
        with pytest.raises(TimeoutError):
            wait_until_ready(
                f"http://127.0.0.1:{server.server_port}/v1", 0.3, poll_s=0.1, served_name="x"
            )
    finally:
        server.shutdown()
    with pytest.raises(TimeoutError):
        wait_until_ready(f"http://127.0.0.1:{server.server_port}/v1", timeout_s=0.3, poll_s=0.1)


def test_wait_until_ready_notices_a_dead_server():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match="code 3"):
        wait_until_ready("http://127.0.0.1:9/v1", timeout_s=5, process=process, poll_s=0.1)


# --- meta-evaluation -------------------------------------------------------------------------


def test_correlation_row_hand_computed_and_constant_scorer():
    import numpy as np

    from medinjection.evaluation.metaeval import correlation_row

    boot = {"samples": 100, "seed": 0}
    row = correlation_row(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]), boot)
    assert row["pearson"] == pytest.approx(float(np.corrcoef([1, 2, 3, 4], [1, 2, 3, 5])[0, 1]))
    assert row["spearman"] == pytest.approx(1.0) and row["kendall"] == pytest.approx(1.0)
    assert row["n"] == 4 and row["note"] == ""
    flat = correlation_row(np.zeros(5), np.array([0.0, 1.0, 1.0, 0.0, 1.0]), boot)
    assert np.isnan(flat["pearson"]) and np.isnan(flat["kendall_low"])
    assert "constant scorer output" in flat["note"]


def _metaeval_smk(tmp_path, judges: dict, select: str, model=None) -> types.SimpleNamespace:
    """The metaeval script's stand-in Snakemake object; `judges`: name -> candidate settings."""
    annotations = ROOT / "resources" / "demo" / "metaeval" / "annotations.jsonl"
    out = tmp_path / "metaeval"
    names = ("correlations", "verbosity", "regression", "scores")
    return types.SimpleNamespace(
        input=types.SimpleNamespace(annotations=str(annotations), prompt=str(PARAPHRASE),
                                    model=[str(model)] if model else []),  # a list, as the rule
        output=types.SimpleNamespace(**{n: str(out / f"{n}.csv") for n in names},
                                     selection=str(out / "judge_selection.json")),
        params=types.SimpleNamespace(
            candidate_field="candidate", candidates={n: c.to_dict() for n, c in judges.items()},
            endpoints={"openai": ENDPOINT.to_dict()}, mode="replay", replay_file=None,
            caches={name: str(tmp_path / name) for name in judges},
            select=select, select_by="pearson",
            bertscore={"model": "minilm-packaged", "num_layers": 6, "lang": "fr",
                       "rescale_with_baseline": False},
            bootstrap={"samples": 50, "seed": 42},
        ),
        log=[str(tmp_path / "metaeval.log")],
    )  # fmt: skip


def test_metaeval_script_on_demo_annotations(tiny_model_dir, tmp_path):
    tiny = candidate("local", "base")
    load_script("metaeval").main(_metaeval_smk(tmp_path, {"tiny": tiny}, "auto", tiny_model_dir))
    import numpy as np
    import pandas as pd
    from scipy import stats

    out = tmp_path / "metaeval"
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 20 and int(scores["human"].sum()) == 11
    assert set(scores["judge:tiny"]) <= {0.0, 1.0}
    assert scores["judge"].equals(scores["judge:tiny"])  # the selected judge's verdicts
    correlations = pd.read_csv(out / "correlations.csv").set_index("scorer")
    assert list(correlations.index) == [
        "judge:tiny", "bleu", "chrf", "rouge1", "rouge2", "rougeL", "bertscore_f1",
    ]  # fmt: skip
    assert (correlations["n"] == 20).all()
    expected = stats.pearsonr(scores["rougeL"], scores["human"])[0]
    assert correlations.loc["rougeL", "pearson"] == pytest.approx(expected)
    assert correlations.loc["rougeL", "pearson_low"] <= expected <= correlations.loc[
        "rougeL", "pearson_high"]  # fmt: skip
    selection = json.loads((out / "judge_selection.json").read_text())
    assert selection["selected"] == "tiny" and selection["mode"] == "auto"
    if scores["judge:tiny"].nunique() == 1:  # a random tiny judge is usually constant
        assert np.isnan(correlations.loc["judge:tiny", "pearson"])
        assert "constant" in correlations.loc["judge:tiny", "note"]
        assert "fell back to the first candidate" in selection["reason"]
    verbosity = pd.read_csv(out / "verbosity.csv")
    assert len(verbosity) == 7 * 4
    assert set(verbosity["scope"]) == {"all", "human_oui", "human_non", "partial_given_human"}
    chrf_all = verbosity[(verbosity.scorer == "chrf") & (verbosity.scope == "all")]
    assert chrf_all["spearman"].item() == pytest.approx(
        stats.spearmanr(scores["chrf"], scores["length_chars"])[0]
    )
    assert verbosity[(verbosity.scope == "human_oui")]["n"].unique().tolist() == [11]
    # partial Pearson given the label = Pearson of within-label centred values
    centred = scores.groupby("human")[["rougeL", "length_chars"]].transform(lambda c: c - c.mean())
    partial = verbosity[(verbosity.scorer == "rougeL") & (verbosity.scope == "partial_given_human")]
    assert partial["pearson"].item() == pytest.approx(
        stats.pearsonr(centred["rougeL"], centred["length_chars"])[0]
    )
    assert np.isnan(partial["kendall"].item())
    regression = pd.read_csv(out / "regression.csv").set_index("scorer")
    # OLS of chrF on [1, human, length/1000], checked against numpy's least squares
    design = np.column_stack([np.ones(20), scores["human"], scores["length_chars"] / 1000])
    coef = np.linalg.lstsq(design, scores["chrf"], rcond=None)[0]
    assert regression.loc["chrf", "coef_length_per_1k_chars"] == pytest.approx(coef[2])
    assert regression.loc["chrf", "coef_human"] == pytest.approx(coef[1])
    assert 0.0 <= regression.loc["chrf", "p_length"] <= 1.0


def test_metaeval_auto_selects_the_best_correlated_judge(tmp_path, monkeypatch):
    import pandas as pd

    labels = {}
    annotations = ROOT / "resources" / "demo" / "metaeval" / "annotations.jsonl"
    for line in annotations.read_text().splitlines():
        item = json.loads(line)
        labels[item["candidate"]] = item["equivalence"]

    def oracle(prompt: str) -> str:  # agrees with the physician on every item
        candidate = prompt.split("Candidate_answer: ", 1)[1].split("\nGround_truth:", 1)[0]
        return "1" if labels[candidate] == "Oui" else "0"

    def verbose(prompt: str) -> str:  # says 1 to long answers only
        candidate = prompt.split("Candidate_answer: ", 1)[1].split("\nGround_truth:", 1)[0]
        return "1" if len(candidate) > 60 else "0"

    made = _fake_chat(monkeypatch, {"oracle": oracle, "verbose": verbose, "mute": lambda _: "?"})
    judges = {name: candidate("openai", name) for name in ("mute", "verbose", "oracle")}
    load_script("metaeval").main(_metaeval_smk(tmp_path, judges, "auto"))
    # one chat function per candidate, each asked once and closed once
    assert [(chat.model, chat.closed) for chat in made] == [
        ("mute", 1), ("verbose", 1), ("oracle", 1),
    ]  # fmt: skip
    out = tmp_path / "metaeval"
    selection = json.loads((out / "judge_selection.json").read_text())
    assert selection["selected"] == "oracle"
    assert selection["candidates"]["oracle"]["pearson"] == pytest.approx(1.0)
    assert selection["candidates"]["mute"]["pearson"] is None  # unparsable -> 0: constant
    assert "highest pearson" in selection["reason"]
    correlations = pd.read_csv(out / "correlations.csv").set_index("scorer")
    assert "20 unparsable as 0" in correlations.loc["judge:mute", "note"]
    regression = pd.read_csv(out / "regression.csv").set_index("scorer")
    # the verbose judge's verdict rises with length at a fixed label; the oracle's does not
    assert regression.loc["judge:verbose", "coef_length_per_1k_chars"] > 0
    assert regression.loc["judge:oracle", "coef_length_per_1k_chars"] == pytest.approx(0, abs=1e-9)
    assert "exact" in regression.loc["judge:oracle", "note"]
    # a fixed choice wins over the correlations, and says so
    load_script("metaeval").main(_metaeval_smk(tmp_path, judges, "verbose"))
    fixed = json.loads((out / "judge_selection.json").read_text())
    assert fixed["selected"] == "verbose" and fixed["mode"] == "configured"


def test_select_judge_ties_and_errors():
    import pandas as pd

    from medinjection.evaluation.judge_selection import select_judge

    frame = pd.DataFrame(
        [{"scorer": f"judge:{n}", "pearson": r, "pearson_low": r, "pearson_high": r,
          "spearman": r, "kendall": r, "n": 10} for n, r in (("a", 0.5), ("b", 0.5), ("c", 0.1))]
    )  # fmt: skip
    assert select_judge(frame, ["a", "b", "c"], "auto", "pearson")["selected"] == "a"
    assert select_judge(frame, ["b", "a", "c"], "auto", "pearson")["selected"] == "b"
    with pytest.raises(KeyError, match="neither 'auto' nor a candidate"):
        select_judge(frame, ["a"], "z", "pearson")
    with pytest.raises(KeyError, match="select_by"):
        select_judge(frame, ["a"], "auto", "r2")


FAKE_VLLM = """#!{python}
import http.server, json, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
name = sys.argv[sys.argv.index("--served-model-name") + 1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({{"data": [{{"id": name}}]}}).encode())
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_serve_vllm_starts_waits_and_always_stops(tmp_path, monkeypatch):
    import os
    import urllib.request

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vllm"
    fake.write_text(FAKE_VLLM.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "judge-model"
    model.mkdir()
    log_path = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match="boom"):
        with vllm_server.serve_vllm(model, "medgemma", log_path, None, 20) as endpoint:
            url = endpoint["base_url"]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
            assert endpoint["api_key_env"] == vllm_server.KEY_ENV
            assert endpoint["max_concurrency"] == 64
            with urllib.request.urlopen(url + "/models", timeout=5) as response:
                assert json.loads(response.read())["data"][0]["id"] == "medgemma"
            raise RuntimeError("boom")  # the server must be stopped even on failure
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/models", timeout=2)


def test_study_config_checks_judge_selection_and_endpoints():
    import copy

    import yaml

    from medinjection.config_checks import StudyConfigError, check_study_config

    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    check_study_config(config)  # the demo as committed is consistent
    wrong = copy.deepcopy(config)
    wrong["judge"]["select"] = "medgemma"
    with pytest.raises(StudyConfigError, match=r"judge.select: 'medgemma' is neither 'auto'"):
        check_study_config(wrong)
    wrong = copy.deepcopy(config)
    wrong["judge"]["candidates"]["api"] = {
        "backend": "openai", "model": "gpt-4o", "endpoint": "nowhere", "max_tokens": 1,
    }  # fmt: skip
    with pytest.raises(
        StudyConfigError, match=r"judge.candidates.api.endpoint: endpoint 'nowhere'"
    ):
        check_study_config(wrong)
