"""Fault injection: each case of docs/reliability.md, with its exact outcome asserted.

Every test injects one fault (an endpoint sending unusable replies, a swapped base model, a cut
mixture, a bad source row, a refused judge request, an over-long prompt, ...) and checks what the
workflow promises: rows kept, rows quarantined with their reason, the run stopped with which
message, nothing lost, nothing stale, nothing paid twice (requests counted on the fake server).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from medinjection.llm.structured import QuarantineRateError
from medinjection.records import Record, read_records, write_records
from medinjection.settings import EndpointSettings, LocationSettings
from tests.support.fake_openai_server import FakeOpenAI, endpoint_for
from tests.support.records import DATASET, dataset_settings

REPO = Path(__file__).resolve().parents[2]
ENV = "MEDINJECTION_FAULT_KEY"
SECRET = "sk-fault-0123456789"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv(ENV, SECRET)
    with FakeOpenAI().serve() as state:
        yield state


def endpoint(base_url: str) -> dict:
    return endpoint_for(base_url, ENV)


def rejected_rows(cache: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT key, reasons FROM rejected").fetchall()


def cached_rows(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


# ---------------------------------------------------------------- 1. LLM replies checked first


def english(n: int) -> list[Record]:
    options = (("A", "Aspirin"), ("B", "Heparin"), ("C", "Warfarin"))
    return [
        Record(f"medqa:{i}", "translated", "medqa", "mcqu", "train", f"Which drug {i}?", "B",
               options, language="en")
        for i in range(n)
    ]  # fmt: skip


def good_translation(body: dict) -> str:
    payload = json.loads(body["messages"][1]["content"])
    return json.dumps({"question": "Quel médicament ?", "options": dict(payload["options"])})


def run_translation(fake: FakeOpenAI, tmp: Path, max_rate: float) -> tuple[list[Record], dict]:
    from medinjection.stages.translate import translate_shard

    records = tmp / "en.parquet"
    write_records(english(4), records)
    out, usage = tmp / "shard_0.parquet", tmp / "shard_0.usage.json"
    translate_shard(
        records, out, usage, 0, 1, EndpointSettings.from_dict(endpoint(fake.base_url)), "m", 0.0,
        256, "live", None,
        str(tmp / "cache.sqlite"),
        max_quarantine_rate=max_rate, quarantine_path=tmp / "logs" / "0.quarantine.jsonl",
    )  # fmt: skip
    return read_records(out), json.loads(usage.read_text())


def test_unusable_translations_stop_the_run_are_not_cached_and_are_asked_again(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.responder = lambda body: '{"question": "Quel ?"}'  # drops the options every time
    with pytest.raises(QuarantineRateError) as stopped:
        run_translation(fake, tmp_path, max_rate=0.25)
    kept = tmp_path / "logs" / "0.quarantine.jsonl"
    assert str(kept) in str(stopped.value) and "translation.max_quarantine_rate" in str(
        stopped.value
    )
    assert "4 of 4 items lost (100.0% > translation.max_quarantine_rate 25.0%)" in str(
        stopped.value
    )
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    assert sorted(q["id"] for q in lines) == [f"medqa:{i}" for i in range(4)]
    assert lines[0]["reasons"][0].startswith("attempt 1: keys differ from the source")
    cache = tmp_path / "cache.sqlite"
    assert cached_rows(cache) == 0 and len(rejected_rows(cache)) == 8  # 4 first + 4 retries
    assert fake.stats()["total"] == 8

    fake.responder = good_translation  # the endpoint is fixed: the rerun asks again
    records, report = run_translation(fake, tmp_path, max_rate=0.25)
    assert [r.id for r in records] == [f"medqa:{i}" for i in range(4)]
    assert report["usage"]["cache_hits"] == 0 and report["usage"]["requests_sent"] == 4
    assert fake.stats()["total"] == 12 and cached_rows(cache) == 4

    records, report = run_translation(fake, tmp_path, max_rate=0.25)  # nothing paid twice
    assert len(records) == 4 and report["usage"]["cache_hits"] == 4
    assert fake.stats()["total"] == 12


def test_an_invalid_reply_cached_by_an_older_version_is_asked_again(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    from medinjection.llm.client import open_client
    from medinjection.llm.translation import translation_request

    [record] = english(1)
    request = translation_request(record, "m", 0.0, 256)
    fake.responder = lambda body: '{"question": "Quel ?"}'
    cache = tmp_path / "cache.sqlite"
    with open_client(endpoint(fake.base_url), "live", None, cache) as client:
        client.complete(request)  # no check: cached as the old client did
    assert cached_rows(cache) == 1
    fake.responder = good_translation
    records, report = run_translation(fake, tmp_path, max_rate=1.0)
    assert "medqa:0" in {r.id for r in records}
    assert report["usage"]["cache_hits"] == 0
    [(key, reasons)] = [row for row in rejected_rows(cache)]
    assert key == client.key(request) and "keys differ" in reasons


def test_synthesis_with_only_unusable_replies_stops_naming_the_kept_file(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    from medinjection.settings import SynthesisSettings, TaskTypesSettings
    from medinjection.sources.base import Document, write_documents
    from medinjection.stages.synthesize import synthesize

    docs = tmp_path / "documents.parquet"
    write_documents([Document("deft:c1", "deft", "clinical_case", None, "Un cas.")], docs)
    fake.responder = lambda body: '{"items": [{"question": "Q ?", "answer": " "}]}'
    quarantine = tmp_path / "logs" / "deft.quarantine.jsonl"

    def go() -> None:
        synthesis = SynthesisSettings(
            endpoint="fake", model="m", temperature=0.0, max_tokens=256, submit="direct",
            max_quarantine_rate=0.5, mcq_per_document=0,
            task_types=TaskTypesSettings(factual_qa=2),
        )  # fmt: skip
        synthesize(
            docs, tmp_path / "r.parquet", tmp_path / "u.json", "deft", synthesis,
            EndpointSettings.from_dict(endpoint(fake.base_url), "endpoint"), mode="live",
            replay_file=None, cache_path=str(tmp_path / "c.sqlite"), seed=1,
            quarantine_path=quarantine,
        )  # fmt: skip

    with pytest.raises(QuarantineRateError, match="2 of 2 items lost") as stopped:
        go()
    assert str(quarantine) in str(stopped.value)
    assert [json.loads(x)["reasons"] for x in quarantine.read_text().splitlines()] == [
        ["empty answer"],
        ["reply holds 1 of 2 items"],
    ]
    assert cached_rows(tmp_path / "c.sqlite") == 0
    fake.responder = lambda body: (
        '{"items": [{"question": "Q1 ?", "answer": "R1."}, {"question": "Q2 ?", "answer": "R2."}]}'
    )
    go()
    assert [r.id for r in read_records(tmp_path / "r.parquet")] == [
        "deft:c1:factual_qa:0",
        "deft:c1:factual_qa:1",
    ]
    assert fake.stats()["total"] == 2  # one unusable reply, one good one: none answered twice


# ---------------------------------------------------------------- 2. checkpoints


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from medinjection.modeling.train import write_train_config
    from medinjection.settings import TinyModelSettings
    from medinjection.stages.train import prepare_base_model
    from tests.support.training import HPARAMS, TINY, train_record, write_jsonl

    root = tmp_path_factory.mktemp("faults_train")
    records = [train_record(i, "train") for i in range(16)]  # max_steps 2 ends mid-epoch
    write_records(records, root / "corpus.parquet")
    prepare_base_model(
        "tiny", root / "base", [root / "corpus.parquet"], tiny=TinyModelSettings.from_dict(TINY),
        out_manifest=root / "base.manifest.json",
    )  # fmt: skip
    write_jsonl(root / "train.jsonl", records)
    write_jsonl(root / "validation.jsonl", [train_record(i, "validation") for i in range(2)])
    write_train_config({**HPARAMS, "max_steps": 2}, "NAT", root / "config.json")
    return {"root": root, "base": root / "base"}


def train_once(run: dict[str, Path], out: Path, base: Path | None = None):
    from medinjection.modeling.train import train

    root = run["root"]
    return train(
        config_path=root / "config.json",
        model_dir=base or run["base"],
        train_path=root / "train.jsonl",
        validation_path=root / "validation.jsonl",
        adapter_dir=out / "adapter",
        metrics_path=out / "metrics.json",
        loss_plot=out / "loss.png",
        checkpoints_dir=root / "checkpoints",
    )


def test_rerun_of_a_finished_run_takes_no_step(tiny_run: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    first = train_once(tiny_run, tmp_path / "a")
    again = train_once(tiny_run, tmp_path / "b")  # before: 3 steps (a 4th on the next rerun)
    assert (first.metrics["steps"], again.metrics["steps"]) == (2, 2)
    assert again.metrics["resumed_from"] == "checkpoint-2"
    assert again.metrics["train_loss"] == first.metrics["train_loss"]
    a = load_file(tmp_path / "a" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_different_base_with_the_same_config_does_not_resume(
    tiny_run: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    train_once(tiny_run, tmp_path / "a")
    other = tmp_path / "other_base"
    shutil.copytree(tiny_run["base"], other)
    weights = other / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01  # same architecture, same config.json, other weights
    save_file(tensors, weights, metadata={"format": "pt"})
    assert (other / "config.json").read_bytes() == (tiny_run["base"] / "config.json").read_bytes()
    outcome = train_once(tiny_run, tmp_path / "b", base=other)
    assert outcome.metrics["resumed_from"] is None and outcome.metrics["steps"] == 2
    # the tokenizer is part of the fingerprint too
    from medinjection.modeling.checkpoints import model_dir_sha256

    before = model_dir_sha256(other)
    tokenizer = other / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text() + " ")
    assert model_dir_sha256(other) != before


def test_the_checkpoint_fingerprint_covers_data_hyperparameters_code_and_libraries(
    tiny_run: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thing that shapes a checkpoint changes the fingerprint; scheduling keys do not."""
    import shutil
    from importlib import metadata

    from medinjection.modeling import checkpoints
    from tests.support.training import HPARAMS

    root = tiny_run["root"]
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    shutil.copy(root / "train.jsonl", train)
    shutil.copy(root / "validation.jsonl", validation)

    def fingerprint(**changes: object) -> str:
        hparams = {**HPARAMS, **changes}
        return checkpoints.run_fingerprint(hparams, tiny_run["base"], train, validation)

    first = fingerprint()
    assert fingerprint(save_steps=7, logging_steps=3) == first  # scheduling only
    assert fingerprint(learning_rate=HPARAMS["learning_rate"] * 2) != first
    assert fingerprint(r=32) != first and fingerprint(method="lora") != first
    lines = train.read_text().splitlines(keepends=True)
    train.write_text("".join(lines[:-1]))  # one training row fewer
    assert fingerprint() != first
    train.write_text("".join(lines))
    validation.write_text(validation.read_text().replace('"id": "t:', '"id": "u:', 1))
    assert fingerprint() != first
    shutil.copy(root / "validation.jsonl", validation)
    assert fingerprint() == first
    version = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "99.0" if name == "peft" else version(name)
    )
    assert fingerprint() != first  # another PEFT version
    monkeypatch.setattr(metadata, "version", version)
    assert "train.py" in checkpoints.TRAINING_CODE and "checkpoints.py" in checkpoints.TRAINING_CODE


# ---------------------------------------------------------------- 3. changed or damaged inputs


@pytest.mark.parametrize(("validation", "test", "total"), [(0.6, 0.5, "1.1"), (0.5, 0.5, "1")])
def test_fractions_leaving_no_training_split_are_refused(
    validation: float, test: float, total: str
) -> None:
    import yaml

    from medinjection.config_checks import StudyConfigError, check_study_config

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["dataset"].update(validation_fraction=validation, test_fraction=test)
    with pytest.raises(StudyConfigError) as refused:
        check_study_config(config)
    assert (
        f"dataset.validation_fraction ({validation}) + dataset.test_fraction ({test}) = {total} "
        "leaves no training records in a hash split; make the sum < 1"
    ) in str(refused.value)
    config["dataset"].update(validation_fraction=0.5, test_fraction=0.49)
    check_study_config(config)  # a sum under 1 leaves a training split: accepted


def test_unknown_adapter_is_refused_naming_the_key_and_the_valid_ones() -> None:
    import yaml

    from medinjection.config_checks import StudyConfigError, check_study_config

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["sources"]["frbmedqa"]["adapter"] = "frbmedqa_v2"
    with pytest.raises(StudyConfigError) as refused:
        check_study_config(config)
    message = str(refused.value)
    assert "sources.frbmedqa.adapter: unknown QA adapter 'frbmedqa_v2'" in message
    assert "'frenchmedmcqa'" in message and "'mediqal'" in message


def mixture_files(tmp: Path, rows: int) -> tuple[Path, Path, Path]:
    import hashlib

    train, validation, manifest = tmp / "train.jsonl", tmp / "validation.jsonl", tmp / "m.json"
    line = '{"id": "t:%d", "messages": [{"role": "user", "content": "q"}, '
    line += '{"role": "assistant", "content": "A"}]}\n'
    train.write_text("".join(line % i for i in range(rows)))
    validation.write_text(line % 99)
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (train, validation)}
    manifest.write_text(
        json.dumps(
            {
                "size": rows,
                "counts": {"native": {"t": {"mcqu": rows}}},
                "train_sha256": digest[train],
                "validation_size": 1,
                "validation_counts": {"native": {"t": {"mcqu": 1}}},
                "validation_sha256": digest[validation],
            }
        )
    )
    return train, validation, manifest


def test_a_mixture_cut_at_a_line_boundary_is_refused_before_training(tmp_path: Path) -> None:
    from medinjection.modeling.train import check_mixture_files, train

    train_path, validation, manifest = mixture_files(tmp_path, 10)
    check_mixture_files(manifest, train_path, validation)  # intact: accepted
    lines = train_path.read_text().splitlines(keepends=True)
    train_path.write_text("".join(lines[:5]))  # a copy that stopped half way, still valid JSONL
    with pytest.raises(ValueError, match=r"train.jsonl: 5 rows.*records 10 rows") as refused:
        train(
            config_path=tmp_path / "absent.json", model_dir=tmp_path, train_path=train_path,
            validation_path=validation, adapter_dir=tmp_path / "a", metrics_path=tmp_path / "m",
            loss_plot=tmp_path / "l.png", checkpoints_dir=tmp_path / "c", manifest_path=manifest,
        )  # fmt: skip
    assert "--forcerun build_mixture" in str(refused.value)
    assert not (tmp_path / "c").exists()  # stopped before anything else
    # same row count, one answer changed: the hash catches it
    _, _, manifest = mixture_files(tmp_path, 10)
    train_path.write_text(train_path.read_text().replace('"A"}', '"B"}', 1))
    with pytest.raises(ValueError, match="10 rows, sha256"):
        check_mixture_files(manifest, train_path, validation)


def test_an_in_place_edit_in_a_local_source_folder_restages_it(tmp_path: Path) -> None:
    from tests.support.workflow import make_workdir, snakemake

    work = make_workdir(tmp_path / "w")
    target = "results/demo/resources/sources/frbmedqa/manifest.json"
    snakemake(work, "--configfile", "config/demo.yaml", "--cores", "1", target)
    dry = snakemake(work, "--configfile", "config/demo.yaml", "-n", target)
    assert "Nothing to be done" in dry.stdout
    raw = work / "resources/demo/sources/frbmedqa/train.jsonl"
    folder_mtime = raw.parent.stat().st_mtime_ns
    with raw.open("r+", encoding="utf-8") as handle:  # in place: the folder's mtime stays
        first = handle.readline()
        handle.seek(0)
        handle.write(first.replace("a", "b", 1))
    assert raw.parent.stat().st_mtime_ns == folder_mtime
    dry = snakemake(work, "--configfile", "config/demo.yaml", "-n", target)
    assert "stage_source" in dry.stdout and "Nothing to be done" not in dry.stdout


# ---------------------------------------------------------------- 5. refused judge requests


def test_refused_judge_requests_are_stored_counted_apart_and_scored_as_configured(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from medinjection.evaluation.judge import JUDGE_SYSTEM_PROMPT
    from medinjection.evaluation.scoring import _judge_scores
    from medinjection.stages import judge as judge_stage
    from tests.support.judge import candidate, write_oeq_inputs

    predictions, testset = write_oeq_inputs(tmp_path)
    _, messages = judge_stage._file_messages(predictions, testset, "v1", JUDGE_SYSTEM_PROMPT)
    fake.responder = lambda body: "1"
    fake.fail_keys[messages[1][-1]["content"]] = "400"  # a content filter refuses item 1
    out = tmp_path / "judge.parquet"
    api = EndpointSettings.from_dict(endpoint(fake.base_url))
    run = judge_stage.JudgeRun(
        candidate("openai", "j"), api, "live", None, str(tmp_path / "j.sqlite")
    )
    judge_stage.judge_predictions(run, None, [predictions], [testset], [out], "v1")
    rows = pq.read_table(out).to_pylist()
    assert [(r["score"], r["error"] is not None) for r in rows] == [
        (1.0, False),
        (None, True),
        (1.0, False),
    ]
    assert "BadRequestError" in rows[1]["error"] and "fake 400" in rows[1]["error"]
    assert fake.stats()["total"] == 3  # the refusal is not retried
    preds = pq.read_table(predictions).to_pylist()
    scores, unparsable, refused = _judge_scores(preds, out, "zero")
    assert (scores, unparsable, refused) == ([1.0, 0.0, 1.0], 0, 1)
    with pytest.raises(ValueError, match=r"refused 1 of 3 requests \(first 'mediqal:1'"):
        _judge_scores(preds, out, "fail")


# ---------------------------------------------------------------- 4. bad rows


def medqa_line(n: int, **changes: object) -> str:
    item = {
        "question": f"Which drug is given in case {n}?",
        "answer": "Heparin",
        "options": {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "Insulin"},
        "answer_idx": "B",
        "meta_info": "step1",
    }
    item.update(changes)
    return json.dumps(item, ensure_ascii=False)


BAD_ROWS: dict[str, tuple[dict, str]] = {  # line content -> the reason it is quarantined for
    "duplicate options": (
        {"options": {"A": "Heparin", "B": "Heparin ", "C": "Warfarin", "D": "Insulin"}},
        "options A and B have the same text 'Heparin'",
    ),
    "NUL": ({"question": "Which\x00 drug?"}, "control or bidi character U+0000 in question"),
    "ESC": (
        {"options": {"A": "Asp\x1b[31mirin", "B": "Heparin", "C": "W", "D": "I"}},
        "control or bidi character U+001B in option A",
    ),
    "RLO": ({"question": "Which drug \u202eB si?"}, "control or bidi character U+202E in question"),
    "markup": (
        {"question": "Which <script>alert(1)</script> drug?"},
        "markup '<script>' in question",
    ),
    "1 MB": ({"question": "Which drug? " + "x" * 1_000_000}, "question has 1000012 characters"),
    "zero-width": ({"question": "\u200b\u200b\u200b"}, "empty question"),
    "letters 1/2/3": (
        {"options": {"1": "Aspirin", "2": "Heparin", "3": "Warfarin"}, "answer_idx": "2"},
        "option letter(s) ['1', '2', '3'] are not among",
    ),
}


def test_bad_rows_are_quarantined_with_their_reason_file_and_line(tmp_path: Path) -> None:
    from medinjection.stages.sources import normalize_source

    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [medqa_line(n) for n in range(40)]
    bad_at = {}
    for name, (changes, _) in BAD_ROWS.items():
        bad_at[name] = len(lines) + 1
        lines.append(medqa_line(len(lines), **changes))
    text = "\n".join(lines) + "\n"
    text += '{"question": "cut here", "options": {"A": \n'  # a malformed JSON line (line 49)
    (raw / "train.jsonl").write_bytes(
        text.encode() + "é latin-1\n".encode("latin-1") + (medqa_line(99) + "\n").encode()
    )
    records, quarantine = tmp_path / "r.parquet", tmp_path / "q.jsonl"
    normalize_source(
        "medqa", "medqa", "translate", raw, records, quarantine, tmp_path / "s.json",
        dataset_settings(1, 0.1, 0.1, 0.25),
    )  # fmt: skip
    kept = read_records(records)
    assert len(kept) == 41  # the 40 good rows and the good row after the two broken lines
    rows = {q["raw_id"]: q for q in map(json.loads, quarantine.read_text().splitlines())}
    assert len(rows) == len(BAD_ROWS) + 2
    for name, (_, reason) in BAD_ROWS.items():
        row = rows[f"train-{bad_at[name]:05d}"]
        assert any(r.startswith(reason) for r in row["reasons"]), (name, row["reasons"])
        assert row["where"] == f"{raw / 'train.jsonl'}:{bad_at[name]}"
    broken = rows["train.jsonl:49"]
    assert broken["reasons"] == [f"{raw / 'train.jsonl'}:49: malformed JSON "
                                 "(Expecting value at column 44)"]  # fmt: skip
    assert broken["where"] == f"{raw / 'train.jsonl'}:49"
    latin = rows["train.jsonl:50"]
    assert latin["reasons"][0].startswith(f"{raw / 'train.jsonl'}:50: not UTF-8 (byte 0xe9")
    assert latin["raw"]["line"] == 50 and latin["where"] == f"{raw / 'train.jsonl'}:50"


DEMO_SOURCES = REPO / "resources" / "demo" / "sources"
DEMO_QUARANTINE: dict[str, list[tuple[str, str, str]]] = {  # raw id, where (in the fixture), reason
    "mediqal": [
        ("mq-00021", "mcqm/train-00000-of-00001.parquet row 10", "duplicate id"),
        ("mq-00004", "mcqu/train-00000-of-00001.parquet row 4", "answer letter(s) ['F']"),
    ],
    "frenchmedmcqa": [  # a JSON array: the line its element starts on
        (
            "6bdd9acf19a72e4a728319beb9e07650519520bf58b8852e620929ff9f716c1c",
            "train.json:124",
            "multiple-choice record without options",
        ),
    ],  # fmt: skip
    "frbmedqa": [("frb-train-0009", "train.jsonl:10", "answer 'une réponse absente'")],
    "medical_cases_fr": [
        ("train-00000-of-00001/00002", "data/train-00000-of-00001.parquet row 2", "empty answer")
    ],
    "medical_mqca_fr": [
        ("train-00000-of-00001/00013", "data/train-00000-of-00001.parquet row 13", "'choices'")
    ],
    "medqa": [
        ("train-00006", "train.jsonl:6", "answer letter(s) ['E']"),
        ("train-00012", "train.jsonl:12", "answer text 'Something else'"),
    ],
    "pubmedqa": [("21000000", "data/ori_pqal.json:2", "final_decision 'unsure'")],  # a JSON object
    "medmcqa": [
        ("491e0974717957cbbbd051638adcd5a4", "data/train-00000-of-00001.parquet row 3", "cop 4")
    ],
    "medxpertqa": [("Text-104", "Text/test.jsonl:5", "answer letter(s) ['K']")],
    "mmlu": [  # rows of other subjects are skipped: the index is the file's, not the kept rows'
        ("college_medicine-dev-00002", "all/dev-00000-of-00001.parquet row 6", "answer 4 is")
    ],
    "mmlu_pro": [("7013", "data/test-00000-of-00001.parquet row 3", "multiple-choice record")],
}


@pytest.mark.parametrize("source", sorted(DEMO_QUARANTINE))
def test_every_adapter_quarantines_with_file_and_line_or_row(tmp_path: Path, source: str) -> None:
    """Each demo source's bad row (adapter checks and record validation alike) names its place."""
    from medinjection.stages.sources import normalize_source

    native = {"mediqal", "frenchmedmcqa", "frbmedqa", "medical_cases_fr", "medical_mqca_fr"}
    raw = DEMO_SOURCES / source
    normalize_source(
        source, source, "native" if source in native else "translate", raw,
        tmp_path / "r.parquet", tmp_path / "q.jsonl", tmp_path / "s.json",
        dataset_settings(42, 0.15, 0.2, 0.25),
    )  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    found = [(q["raw_id"], q["where"], q["reasons"][0]) for q in rows]
    expected = DEMO_QUARANTINE[source]
    assert [(i, w) for i, w, _ in found] == [(i, f"{raw}/{w}") for i, w, _ in expected]
    reasons = zip([r for *_, r in found], [r for *_, r in expected], strict=True)
    assert all(got.startswith(want) for got, want in reasons)


def test_json_arrays_objects_and_original_medmcqa_lines_are_located(tmp_path: Path) -> None:
    """A released JSON array and a PubMedQA object name the line of the bad element; a broken
    line of the original MedMCQA JSON Lines is quarantined, not fatal."""
    from medinjection.stages.sources import normalize_source

    def run(adapter: str, raw: Path) -> dict[str, dict]:
        out = tmp_path / adapter
        normalize_source(
            adapter, adapter, "native" if adapter.startswith("released") else "translate", raw,
            out / "r.parquet", out / "q.jsonl", out / "s.json", dataset_settings(1, 0.1, 0.1, 0.5),
        )  # fmt: skip
        return {q["raw_id"]: q for q in map(json.loads, (out / "q.jsonl").read_text().splitlines())}

    released = tmp_path / "released" / "Train" / "mcqu"
    released.mkdir(parents=True)
    item = {"messages": [{"role": "user", "content": "Q ?\nA) oui\nB) non"},
                         {"role": "assistant", "content": "A"}], "classes": ["A", "B"],
            "answer": "A"}  # fmt: skip
    bad = item | {"classes": ["A", "B", "C"]}
    (released / "x.json").write_text(json.dumps([item, item, bad, item], indent=2))
    starts = [n for n, text in enumerate((released / "x.json").read_text().splitlines(), 1)
              if text == "  {"]  # fmt: skip
    line = starts[2]  # the third element's first line
    rows = run("released_native", tmp_path / "released")
    [(raw_id, row)] = rows.items()
    assert raw_id == "train/mcqu/x/000002" and "do not match classes" in row["reasons"][0]
    assert len(starts) == 4 and row["where"] == f"{released / 'x.json'}:{line}"

    pubmed = tmp_path / "pubmed"
    pubmed.mkdir()
    entry = {"QUESTION": "Q?", "CONTEXTS": ["c"], "LONG_ANSWER": "l", "final_decision": "yes"}
    items = {"1": entry, "2": entry, "3": entry | {"final_decision": "unsure"}}
    (pubmed / "ori_pqal.json").write_text(json.dumps(items, indent=1))
    rows = run("pubmedqa", pubmed)
    line = (pubmed / "ori_pqal.json").read_text().splitlines().index(' "3": {') + 1
    assert line > 3 and rows["3"]["where"] == f"{pubmed / 'ori_pqal.json'}:{line}"

    medmcqa = tmp_path / "medmcqa"
    medmcqa.mkdir()
    base = {"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1}
    lines = [json.dumps(base | {"id": f"t{n}"}) for n in range(4)]
    lines[2] = lines[2][:-5]  # a cut line
    lines[3] = json.dumps(base | {"id": "t3", "cop": 0})
    (medmcqa / "train.json").write_text("\n".join(lines) + "\n")
    rows = run("medmcqa_json", medmcqa)
    assert rows["train.json:3"]["where"] == f"{medmcqa / 'train.json'}:3"
    assert rows["train.json:3"]["reasons"][0].startswith(f"{medmcqa / 'train.json'}:3: malformed")
    assert rows["t3"]["where"] == f"{medmcqa / 'train.json'}:4"


def test_a_latin1_file_stops_the_source_naming_file_and_line(tmp_path: Path) -> None:
    from medinjection.stages.sources import normalize_source

    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [medqa_line(n, question=f"Quel médicament {n} ?") for n in range(5)]
    (raw / "train.jsonl").write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(ValueError) as stopped:
        normalize_source(
            "medqa", "medqa", "translate", raw, tmp_path / "r.parquet", tmp_path / "q.jsonl",
            tmp_path / "s.json", dataset_settings(1, 0.1, 0.1, 0.25),
        )  # fmt: skip
    message = str(stopped.value)
    assert "5 of 5 raw items quarantined" in message
    assert f"{raw / 'train.jsonl'}:1: not UTF-8 (byte 0xe9" in message


def test_a_malformed_json_file_names_file_and_line(tmp_path: Path) -> None:
    from medinjection.sources.base import load_json_file

    path = tmp_path / "train.json"
    path.write_text('[\n  {"id": 1},\n  {"id": 2,,}\n]\n')
    with pytest.raises(ValueError, match=r"train.json:3: malformed JSON \(Expecting"):
        load_json_file(path)
    path.write_bytes('[{"q": "é"}]'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"train.json:1: not UTF-8 \(byte 0xe9\)"):
        load_json_file(path)


# ---------------------------------------------------------------- 6. prompts over the context


def test_a_prompt_longer_than_the_model_context_is_refused_without_max_model_len(
    tiny_run: dict[str, Path], tmp_path: Path
) -> None:
    from medinjection.stages.predict import predict
    from tests.support.predict import prediction

    long = Record("t:long", "native", "t", "oeq", "test", "Pourquoi ? " * 400, "Parce que.")
    short = Record("t:short", "native", "t", "oeq", "test", "Pourquoi ?", "Parce que.")
    testset, out = tmp_path / "oeq.parquet", tmp_path / "pred" / "oeq.parquet"
    write_records([short, long], testset)
    with pytest.raises(ValueError) as refused:
        predict(prediction("transformers", 2, 4), tiny_run["base"], None, [testset], [out], "v1")
    message = str(refused.value)
    assert "item 't:long' needs" in message and "> the model's context" in message
    assert "max_position_embeddings; prediction.max_model_len null) 512" in message
    assert not out.exists()  # refused before any generation


# ---------------------------------------------------------------- loud, and clear


@pytest.mark.parametrize("secret", [SECRET + "\r", SECRET + "\n", " " + SECRET])
def test_a_key_with_a_stray_line_end_gives_one_clear_message_and_no_request(
    fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    from medinjection.config_checks import check_before_run
    from medinjection.llm.client import LLMError, open_client

    monkeypatch.setenv(ENV, secret)
    with pytest.raises(LLMError, match=f"{ENV}: the API key has leading or trailing whitespace"):
        open_client(endpoint(fake.base_url), "live", None, tmp_path / "c.sqlite")
    assert fake.stats()["total"] == 0
    import yaml

    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["llm"]["mode"] = "live"
    config["sources"] = {}  # only the key check
    env_var = config["llm"]["endpoints"][config["translation"]["endpoint"]]["api_key_env"]
    with pytest.raises(ValueError, match=f"{env_var}: the API key has leading") as stopped:
        check_before_run(config, {env_var: secret})
    assert SECRET not in str(stopped.value)


def test_a_failed_job_traceback_is_in_its_log_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "logs" / "rule.log"
    code = (
        "from medinjection.logs import setup_logging\n"
        f"setup_logging({str(log)!r})\n"
        "def deep():\n    raise KeyError('sources.x.adapter')\n"
        "deep()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    text = log.read_text()
    assert "CRITICAL medinjection: job failed: KeyError: 'sources.x.adapter'" in text
    assert "Traceback (most recent call last)" in text and "in deep" in text


def test_the_quarantine_a_normalize_rate_error_names_outlives_the_job(tmp_path: Path) -> None:
    from medinjection.stages.sources import normalize_source

    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [medqa_line(n) for n in range(3)] + [medqa_line(9, question="")] * 2
    (raw / "train.jsonl").write_text("\n".join(lines) + "\n")
    outputs = tmp_path / "results"
    kept = tmp_path / "logs" / "normalize_source" / "medqa.quarantine.jsonl"
    with pytest.raises(ValueError) as stopped:
        normalize_source(
            "medqa", "medqa", "translate", raw, outputs / "r.parquet", outputs / "q.jsonl",
            outputs / "s.json", dataset_settings(1, 0.1, 0.1, 0.25),
            kept_quarantine_path=kept,
        )  # fmt: skip
    assert f"see {kept}" in str(stopped.value)
    import shutil

    shutil.rmtree(outputs)  # what Snakemake does with a failed job's outputs
    reasons = [json.loads(line)["reasons"] for line in kept.read_text().splitlines()]
    assert reasons == [["empty question"], ["empty question"]]


# ---------------------------------------------------------------- services a test starts


def test_slurm_stop_ends_the_recorded_pids_only_never_by_name(tmp_path: Path) -> None:
    import shutil
    import subprocess

    fake = tmp_path / "slurmd"  # a process whose name is slurmd, as a real daemon's would be
    shutil.copy(shutil.which("sleep"), fake)
    ours = subprocess.Popen([str(fake), "300"])
    theirs = subprocess.Popen([str(fake), "300"])  # same name, not started by the script
    try:
        state = tmp_path / "state"
        state.mkdir()
        (state / "started.pids").write_text(f"slurmd {ours.pid}\nslurmctld 999999999\n")
        proc = subprocess.run(
            ["bash", str(REPO / "tools/slurm_local.sh"), "stop"],
            env={"PATH": "/usr/bin:/bin", "SLURM_LOCAL_STATE": str(state)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"stopped slurmd (pid {ours.pid})" in proc.stdout
        assert "slurmctld (pid 999999999) is no longer running" in proc.stdout
        assert ours.wait(timeout=10) == -15  # SIGTERM
        assert theirs.poll() is None  # same name, never recorded: untouched
        assert not (state / "started.pids").exists()
    finally:
        for process in (ours, theirs):
            process.kill()
            process.wait()
    assert "pkill" not in (REPO / "tools/slurm_local.sh").read_text()


def test_a_staged_file_damaged_after_staging_stops_normalize(tmp_path: Path) -> None:
    from medinjection.stages.sources import normalize_source, stage_source

    source_dir = tmp_path / "medqa"
    source_dir.mkdir()
    (source_dir / "train.jsonl").write_text("\n".join(medqa_line(n) for n in range(4)) + "\n")
    raw, manifest = tmp_path / "staged" / "raw", tmp_path / "staged" / "manifest.json"
    stage_source("medqa", LocationSettings(kind="local", path=str(source_dir)), raw, manifest)
    (raw / ".snakemake_timestamp").touch()  # Snakemake's mark on a directory output: ignored

    def go() -> None:
        normalize_source(
            "medqa", "medqa", "translate", raw, tmp_path / "r.parquet", tmp_path / "q.jsonl",
            tmp_path / "s.json", dataset_settings(1, 0.1, 0.1, 0.25), manifest_path=manifest,
        )  # fmt: skip

    go()
    assert len(read_records(tmp_path / "r.parquet")) == 4
    (tmp_path / "r.parquet").unlink()
    staged = raw / "train.jsonl"
    staged.write_text("\n".join(staged.read_text().splitlines()[:2]) + "\n")  # truncated
    with pytest.raises(ValueError, match=r"differs from its manifest .*changed \['train.jsonl'\]"):
        go()
    assert not (tmp_path / "r.parquet").exists()


def test_a_corpus_document_without_text_is_skipped_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Corpora have no quarantine (a document is not a QA item): the warning names the place."""
    from medinjection.sources.corpora import load_diamed, load_morfitt

    (tmp_path / "m").mkdir()
    tsv = tmp_path / "m" / "train.tsv"
    tsv.write_text("identifier\tabstract\tspecialities\na1\tUn résumé.\tcardio\na2\t \tneuro\n")
    (tmp_path / "d" / "splits").mkdir(parents=True)
    cases = [{"identifier": "c1", "clinical_case": "Un cas."}, {"identifier": "c2"}]
    split = tmp_path / "d" / "splits" / "train.json"
    split.write_text(json.dumps(cases, indent=1))
    with caplog.at_level("WARNING"):
        assert [d.id for d in load_morfitt(tmp_path / "m", "morfitt")] == ["morfitt:a1"]
        assert [d.id for d in load_diamed(tmp_path / "d", "diamed")] == ["diamed:c1"]
    assert f"document a2 ({tsv}:3) has an empty text; skipped" in caplog.text
    assert f"document c2 ({split}:6) has an empty text; skipped" in caplog.text


# ---------------------------------------------------------------- every consumer checks its inputs


def test_each_producer_writes_a_manifest_its_consumer_accepts(tmp_path: Path) -> None:
    """normalize_source -> build_dataset -> test_sets, each checking the previous one's manifest."""
    from medinjection.settings import TestSetSettings
    from medinjection.stages.dataset import build_dataset, extract_test_sets
    from medinjection.stages.sources import normalize_source

    norm = tmp_path / "normalized" / "frbmedqa"
    normalize_source(
        "frbmedqa", "frbmedqa", "native", DEMO_SOURCES / "frbmedqa", norm / "records.parquet",
        norm / "quarantine.jsonl", norm / "stats.json", dataset_settings(42, 0.15, 0.2, 0.25),
        out_manifest=norm / "manifest.json",
    )  # fmt: skip
    manifest = json.loads((norm / "manifest.json").read_text())
    kept = len(read_records(norm / "records.parquet"))
    assert manifest["rule"] == "normalize_source" and set(manifest["files"]) == {
        "records.parquet",
        "stats.json",
    }
    assert manifest["files"]["records.parquet"]["rows"] == kept == 31
    dataset = tmp_path / "dataset"
    build_dataset(
        [norm / "records.parquet"], [], [], dataset, DATASET, [norm / "stats.json"],
        input_manifests=[norm / "manifest.json"], out_manifest=dataset / "manifest.json",
    )  # fmt: skip
    recorded = json.loads((dataset / "manifest.json").read_text())["files"]
    assert len(recorded) == 10  # 3 origins x 3 splits, and all.parquet
    assert recorded["native/test.parquet"]["rows"] == len(
        read_records(dataset / "native" / "test.parquet")
    )
    extract_test_sets(
        [dataset / "native" / "test.parquet"],
        {"frbmedqa": TestSetSettings(origin="native", source="frbmedqa", task="mcqu")},
        tmp_path / "testsets",
        input_manifests=[dataset / "manifest.json"],
        out_manifest=tmp_path / "testsets" / "manifest.json",
    )
    sets = json.loads((tmp_path / "testsets" / "manifest.json").read_text())
    assert sets["rule"] == "test_sets" and list(sets["files"]) == ["frbmedqa.parquet"]


def call_consumer(consumer: str, inputs: list[Path], manifests: list[Path], tmp: Path) -> None:
    """Run one consumer on `inputs`; each checks them before any other work."""
    if consumer == "build_dataset":
        from medinjection.stages.dataset import build_dataset

        build_dataset(inputs, [], [], tmp / "d", DATASET, [], input_manifests=manifests)
    elif consumer == "test_sets":
        from medinjection.stages.dataset import extract_test_sets

        extract_test_sets(inputs, {}, tmp / "t", input_manifests=manifests)
    elif consumer == "build_mixture":
        from medinjection.settings import MixturesSettings
        from medinjection.stages.mixtures import build_mixture

        mixtures = MixturesSettings.from_dict(
            {"size": 1, "validation_size": 0, "seed": 1, "tasks": ["mcqu"],
             "definitions": {"m": {"native": 1.0}}}, "mixtures",
        )  # fmt: skip
        build_mixture(
            "m", mixtures, "v1", inputs, [], tmp / "t.jsonl", tmp / "v.jsonl", tmp / "m.json",
            input_manifests=manifests,
        )  # fmt: skip
    elif consumer == "predict":
        from medinjection.stages.predict import predict
        from tests.support.predict import prediction

        outs = [tmp / f"p{n}.parquet" for n in range(len(inputs))]
        predict(prediction("transformers", 1, 4), tmp / "no-model", None, inputs, outs, "v1",
                input_manifests=manifests)  # fmt: skip
    elif consumer == "judge":
        from medinjection.stages.judge import judge_with_selection

        judge_with_selection({}, "none", None, None, inputs, [], [], "c", "v1",
                             input_manifests=manifests)  # fmt: skip
    elif consumer == "position_bias":
        from medinjection.settings import PositionBiasSettings
        from medinjection.stages.position_bias import score_position_bias

        bias = PositionBiasSettings(permutations=1, seed=0)
        score_position_bias("base", inputs, [], {}, bias, tmp / "p.json", tmp / "p.csv",
                            input_manifests=manifests)  # fmt: skip
    elif consumer == "translate_shard":
        from medinjection.settings import EndpointSettings
        from medinjection.stages.translate import translate_shard

        translate_shard(
            inputs[0], tmp / "s.parquet", tmp / "u.json", 0, 1,
            EndpointSettings.from_dict(endpoint("http://127.0.0.1:9")), "m", 0.0, 8, "live",
            None, str(tmp / "c.sqlite"), max_quarantine_rate=0.0,
            quarantine_path=tmp / "q.jsonl", input_manifests=manifests,
        )  # fmt: skip
    elif consumer == "synthesize":
        from medinjection.settings import EndpointSettings, SynthesisSettings, TaskTypesSettings
        from medinjection.stages.synthesize import synthesize

        synthesis = SynthesisSettings(
            endpoint="fake", model="m", temperature=0.0, max_tokens=8, submit="direct",
            max_quarantine_rate=0.0, mcq_per_document=0, task_types=TaskTypesSettings(),
        )  # fmt: skip
        synthesize(
            inputs[0], tmp / "r.parquet", tmp / "u.json", "deft", synthesis,
            EndpointSettings.from_dict(endpoint("http://127.0.0.1:9")), mode="live",
            replay_file=None, cache_path=str(tmp / "c.sqlite"), seed=1,
            quarantine_path=tmp / "q.jsonl", input_manifests=manifests,
        )  # fmt: skip
    elif consumer == "gather_translation":
        from medinjection.stages.translate import gather_shards

        gather_shards(inputs, tmp / "g.parquet", [], None, input_manifests=manifests)
    elif consumer == "table1":
        from medinjection.stages.report import write_tables

        write_tables(inputs, tmp / "s.csv", [], 0.05, {}, input_manifests=manifests)
    elif consumer == "significance":
        from medinjection.settings import BootstrapSettings, SignificanceSettings
        from medinjection.stages.report import write_significance

        tests = SignificanceSettings(metrics=("em",), correction="holm", alpha=0.05)
        write_significance(inputs, [], tests, BootstrapSettings(samples=1, seed=0),
                           tmp / "s.csv", input_manifests=manifests)  # fmt: skip
    elif consumer == "plot_judge_length":
        from medinjection.stages.report import plot_judge_length

        plot_judge_length(tmp / "i.csv", tmp / "s.json", inputs, [], tmp / "p.png",
                          input_manifests=manifests)  # fmt: skip
    else:
        from medinjection.settings import BootstrapSettings
        from medinjection.stages.score import score_model

        boot = BootstrapSettings(samples=1, seed=0)  # the manifest check fails before any use
        score_model("base", inputs, [], {}, None, boot, tmp / "s.json", input_manifests=manifests)  # type: ignore[arg-type]


PRODUCER = {  # consumer -> the rule that wrote its input
    "build_dataset": "normalize_source",
    "test_sets": "build_dataset",
    "build_mixture": "build_dataset",
    "predict": "test_sets",
    "judge": "predict",
    "score": "predict",
    "position_bias": "predict",
    "translate_shard": "normalize_source",
    "synthesize": "normalize_corpus",
    "gather_translation": "translate_shard",
    "table1": "score",
    "significance": "score",
    "plot_judge_length": "score",
}


@pytest.mark.parametrize("fault", ["cut", "edited"])
@pytest.mark.parametrize("consumer", list(PRODUCER))
def test_every_consumer_refuses_an_input_that_differs_from_its_manifest(
    tmp_path: Path, consumer: str, fault: str
) -> None:
    import hashlib

    from medinjection.manifests import ManifestMismatch, write_manifest

    rule = PRODUCER[consumer]
    path, manifest = tmp_path / "in" / "records.parquet", tmp_path / "in" / "manifest.json"
    write_records(english(4), path)
    write_manifest(manifest, rule, [path])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    if fault == "cut":  # a copy that stopped half way, still a valid file
        write_records(english(2), path)
    else:  # same rows, one answer changed
        write_records([*english(3), Record("medqa:3", "translated", "medqa", "mcqu", "train",
                                           "Which drug 3?", "C", english(1)[0].options,
                                           language="en")], path)  # fmt: skip
    after = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ManifestMismatch) as refused:
        call_consumer(consumer, [path], [manifest], tmp_path)
    rows = 2 if fault == "cut" else 4
    assert str(refused.value) == (
        f"{path}: {rows} rows, sha256 {after[:12]}…, but its manifest {manifest} records 4 rows, "
        f"sha256 {before[:12]}…: the file was cut or changed after rule {rule} wrote it. "
        f"Rerun it (snakemake --forcerun {rule}), then {consumer}"
    )


def test_a_damaged_or_unlisted_input_is_refused(tmp_path: Path) -> None:
    from medinjection.manifests import ManifestMismatch, check_inputs, write_manifest

    path, manifest = tmp_path / "records.parquet", tmp_path / "manifest.json"
    write_records(english(4), path)
    write_manifest(manifest, "test_sets", [path])
    check_inputs([path], [manifest], "predict")  # intact: accepted
    path.write_bytes(path.read_bytes()[:-20])  # cut inside the footer
    with pytest.raises(ManifestMismatch, match=r"records.parquet: unreadable parquet, sha256 "):
        check_inputs([path], [manifest], "predict")
    other = tmp_path / "other.parquet"
    write_records(english(1), other)
    with pytest.raises(ManifestMismatch, match=rf"other.parquet: not listed in {manifest}; rule "):
        check_inputs([other], [manifest], "predict")


def test_the_new_producers_write_manifests_their_consumers_accept(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """normalize_corpus -> synthesize and translate_shard -> gather_translation, untouched: run."""
    from medinjection.settings import SynthesisSettings, TaskTypesSettings
    from medinjection.stages.sources import normalize_corpus
    from medinjection.stages.synthesize import synthesize
    from medinjection.stages.translate import gather_shards, translate_shard

    docs = tmp_path / "deft2021" / "documents.parquet"
    normalize_corpus("deft2021", "deft2021", DEMO_SOURCES / "deft2021", docs,
                     out_manifest=docs.with_suffix(".manifest.json"))  # fmt: skip
    recorded = json.loads(docs.with_suffix(".manifest.json").read_text())
    assert recorded["rule"] == "normalize_corpus" and list(recorded["files"]) == [
        "documents.parquet"
    ]
    fake.responder = lambda body: '{"items": [{"question": "Q ?", "answer": "R."}]}'
    synthesis = SynthesisSettings(
        endpoint="fake", model="m", temperature=0.0, max_tokens=64, submit="direct",
        max_quarantine_rate=0.0, mcq_per_document=0, task_types=TaskTypesSettings(factual_qa=1),
    )  # fmt: skip
    synthesize(
        docs, tmp_path / "r.parquet", tmp_path / "u.json", "deft", synthesis,
        EndpointSettings.from_dict(endpoint(fake.base_url)), mode="live", replay_file=None,
        cache_path=str(tmp_path / "c.sqlite"), seed=1, quarantine_path=tmp_path / "q.jsonl",
        input_manifests=[docs.with_suffix(".manifest.json")],
    )  # fmt: skip
    documents = recorded["files"]["documents.parquet"]["rows"]
    assert len(read_records(tmp_path / "r.parquet")) == documents  # one item per document

    fake.responder = good_translation
    records = tmp_path / "en.parquet"
    write_records(english(4), records)
    shards = [tmp_path / "t" / f"shard_{n}.parquet" for n in range(2)]
    for n, shard in enumerate(shards):
        translate_shard(
            records, shard, shard.with_suffix(".usage.json"), n, 2,
            EndpointSettings.from_dict(endpoint(fake.base_url)), "m", 0.0, 256, "live", None,
            str(tmp_path / "t.sqlite"), max_quarantine_rate=0.0,
            quarantine_path=tmp_path / f"{n}.quarantine.jsonl",
            out_manifest=shard.with_suffix(".manifest.json"),
        )  # fmt: skip
    assert set(json.loads(shards[0].with_suffix(".manifest.json").read_text())["files"]) == {
        "shard_0.parquet",
        "shard_0.usage.json",
    }
    gather_shards(
        shards, tmp_path / "g.parquet", [s.with_suffix(".usage.json") for s in shards], 0.0,
        input_manifests=[s.with_suffix(".manifest.json") for s in shards],
    )  # fmt: skip
    assert len(read_records(tmp_path / "g.parquet")) == 4
    usage = shards[1].with_suffix(".usage.json")  # a usage report edited: the loss count lies
    usage.write_text(usage.read_text().replace('"records_in": ', '"records_in": 1', 1))
    with pytest.raises(ValueError, match=r"shard_1.usage.json: \d+ rows, sha256 .* after rule "
                       r"translate_shard wrote it"):  # fmt: skip
        gather_shards(
            shards, tmp_path / "g.parquet", [s.with_suffix(".usage.json") for s in shards], 0.0,
            input_manifests=[s.with_suffix(".manifest.json") for s in shards],
        )  # fmt: skip


def flip_one_byte(path: Path) -> tuple[str, str]:
    """Damage `path` in its middle, same size; return its sha256 before and after."""
    import hashlib

    data = bytearray(path.read_bytes())
    before = hashlib.sha256(data).hexdigest()
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return before, hashlib.sha256(data).hexdigest()


@pytest.fixture()
def model_folders(tiny_run: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A copy of the tiny base model with prepare_base_model's manifest, and a trained adapter
    with the manifest the train rule writes (`python -m medinjection.manifests`)."""
    import shutil

    from medinjection.manifests import main as write_folder_manifest_cli

    models = tmp_path / "models"
    shutil.copytree(tiny_run["base"], models / "base")
    shutil.copy(tiny_run["root"] / "base.manifest.json", models / "base.manifest.json")
    run = tmp_path / "train" / "NAT" / "seed1"
    train_once(tiny_run, run)  # the finished run's checkpoint is reloaded: no step taken
    write_folder_manifest_cli([str(run / "adapter.manifest.json"), "train", str(run / "adapter")])
    return {
        "base": models / "base",
        "base_manifest": models / "base.manifest.json",
        "adapter": run / "adapter",
        "adapter_manifest": run / "adapter.manifest.json",
    }


def predict_with(folders: dict[str, Path], tmp: Path, model: Path, adapter: Path | None,
                 manifests: list[Path]) -> None:  # fmt: skip
    from medinjection.stages.predict import predict
    from tests.support.predict import prediction

    testset = tmp / "mcqu.parquet"
    write_records([Record("t:1", "native", "t", "mcqu", "test", "Quel ?", "A",
                          (("A", "oui"), ("B", "non")))], testset)  # fmt: skip
    predict(prediction("transformers", 1, 4), model, adapter, [testset],
            [tmp / "pred" / "mcqu.parquet"], "v1", model_manifests=manifests)  # fmt: skip


def test_models_and_adapters_are_checked_against_their_manifests(
    tiny_run: dict[str, Path], model_folders: dict[str, Path], tmp_path: Path
) -> None:
    """predict, merge_adapter and token_lengths: untouched folders run; a weights file damaged
    at the same size, a missing, added or edited file stop the job naming file, hashes, manifest
    and the rule to rerun. token_lengths does not read (nor hash) the weights."""
    from medinjection.manifests import ManifestMismatch
    from medinjection.stages.train import merge_adapter, token_length_report

    base, adapter = model_folders["base"], model_folders["adapter"]
    manifests = [model_folders["base_manifest"], model_folders["adapter_manifest"]]
    recorded = json.loads(model_folders["base_manifest"].read_text())
    assert recorded["rule"] == "prepare_base_model"
    assert {"base/config.json", "base/model.safetensors", "base/tokenizer.json"} <= set(
        recorded["files"]
    )
    assert set(json.loads(manifests[1].read_text())["files"]) >= {
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    }

    def lengths() -> None:
        token_length_report(base, tiny_run["root"] / "train.jsonl",
                            tiny_run["root"] / "validation.jsonl", 64, tmp_path / "lengths.json",
                            model_manifests=manifests[:1])  # fmt: skip

    predict_with(model_folders, tmp_path, base, adapter, manifests)  # untouched: runs
    assert (tmp_path / "pred" / "mcqu.parquet").is_file()
    merged = tmp_path / "merged"
    merge_adapter(base, adapter, merged, manifests, out_manifest=tmp_path / "merged.manifest.json")
    predict_with(model_folders, tmp_path, merged, None, [tmp_path / "merged.manifest.json"])
    lengths()

    weights = base / "model.safetensors"
    size = weights.stat().st_size
    before, after = flip_one_byte(weights)  # same size: only the hash tells
    assert weights.stat().st_size == size
    expected = (
        f"{weights}: {size} bytes, sha256 {after[:12]}…, but its manifest {manifests[0]} records "
        f"{size} bytes, sha256 {before[:12]}…: the file was cut or changed after rule "
        "prepare_base_model wrote it. Rerun it (snakemake --forcerun prepare_base_model), then "
    )
    with pytest.raises(ManifestMismatch) as refused:
        predict_with(model_folders, tmp_path, base, adapter, manifests)
    assert str(refused.value) == expected + "predict"
    with pytest.raises(ManifestMismatch) as refused:
        merge_adapter(base, adapter, tmp_path / "merged2", manifests)
    assert str(refused.value) == expected + "merge_adapter"
    assert not (tmp_path / "merged2").exists()
    lengths()  # the tokenizer is intact: token_lengths does not read the weights

    tokenizer = base / "tokenizer.json"
    tokenizer.rename(tmp_path / "tokenizer.json")
    with pytest.raises(ManifestMismatch, match=rf"^{tokenizer}: missing, but its manifest "
                       rf"{manifests[0]} records it \(\d+ bytes, sha256 "):  # fmt: skip
        lengths()
    (tmp_path / "tokenizer.json").rename(tokenizer)
    (base / "extra.json").write_text("{}")
    with pytest.raises(ManifestMismatch, match=rf"^{base / 'extra.json'}: not listed in "):
        lengths()

    (base / "extra.json").unlink()
    flip_one_byte(weights)  # the base restored: the adapter is what differs now
    adapter_weights = adapter / "adapter_model.safetensors"
    before, after = flip_one_byte(adapter_weights)
    with pytest.raises(ManifestMismatch) as refused:
        predict_with(model_folders, tmp_path, base, adapter, manifests)
    assert str(refused.value).startswith(f"{adapter_weights}: ")
    assert (
        f"sha256 {before[:12]}…: the file was cut or changed after rule train wrote it. "
        "Rerun it (snakemake --forcerun train), then predict" in str(refused.value)
    )


def test_a_linked_local_base_model_is_recorded_and_checked_through_its_link(
    tiny_run: dict[str, Path], tmp_path: Path
) -> None:
    """base_model.kind local links the user's folder: its manifest names the files through the
    link, and an edit of the linked folder is refused."""
    import shutil

    from medinjection.manifests import ManifestMismatch, check_folder
    from medinjection.stages.train import prepare_base_model

    mine = tmp_path / "my_model"
    shutil.copytree(tiny_run["base"], mine)
    base, manifest = tmp_path / "models" / "base", tmp_path / "models" / "base.manifest.json"
    prepare_base_model("local", base, [], local_path=str(mine), out_manifest=manifest)
    assert base.is_symlink() and "base/config.json" in json.loads(manifest.read_text())["files"]
    check_folder(base, [manifest], "predict")
    (mine / "config.json").write_text((mine / "config.json").read_text() + " ")
    with pytest.raises(ManifestMismatch, match=rf"^{base / 'config.json'}: \d+ bytes, sha256 "):
        check_folder(base, [manifest], "predict")


# ---------------------------------------------------------------- through real Snakemake rules


def fault_config(work: Path, text: str) -> Path:
    """A config merged over config/demo.yaml (`--configfile config/demo.yaml <it>`)."""
    path = work / "config" / "fault.yaml"
    path.write_text(text)
    return path


def test_an_unknown_adapter_stops_the_dry_run_naming_the_key(tmp_path: Path) -> None:
    from tests.support.workflow import make_workdir, snakemake

    work = make_workdir(tmp_path / "w")
    fault_config(work, "sources:\n  frbmedqa:\n    adapter: frbmedqa_v2\n")
    dry = snakemake(work, "--configfile", "config/demo.yaml", "config/fault.yaml", "-n",
                    check=False)  # fmt: skip
    assert dry.returncode != 0
    assert "sources.frbmedqa.adapter: unknown QA adapter 'frbmedqa_v2'" in dry.stdout
    assert "'mediqal'" in dry.stdout and "Job stats" not in dry.stdout  # before any job


def test_a_failed_rule_writes_its_traceback_to_its_log_file(tmp_path: Path) -> None:
    """A real job (normalize_source, over its quarantine limit) fails: its log file holds the
    error and the traceback, not only Snakemake's stderr."""
    from tests.support.workflow import make_workdir, snakemake

    work = make_workdir(tmp_path / "w")
    fault_config(work, "dataset:\n  max_quarantine_rate: 0.0\n")
    run = snakemake(work, "--configfile", "config/demo.yaml", "config/fault.yaml", "--cores", "1",
                    "results/demo/normalized/frbmedqa/records.parquet", check=False)  # fmt: skip
    assert run.returncode != 0 and "Error in rule normalize_source" in run.stdout
    log = (work / "results/demo/logs/normalize_source/frbmedqa.log").read_text()
    assert "CRITICAL medinjection: job failed: ValueError: " in log
    assert "dataset.max_quarantine_rate" in log
    assert "Traceback (most recent call last)" in log and "in normalize_source" in log
    assert not (work / "results/demo/normalized/frbmedqa/records.parquet").exists()
