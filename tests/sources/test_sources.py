"""Source adapters, staging and normalisation on hand-built raw files and the demo fixtures."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from medinjection.records import Record, read_records
from medinjection.settings import LocationSettings
from medinjection.sources import ADAPTERS, CORPUS_ADAPTERS, get_adapter
from medinjection.sources.base import Quarantined, hash_split, read_documents
from medinjection.sources.medxpertqa import strip_answer_choices
from medinjection.sources.mmlu import MMLU_MEDICAL_SUBJECTS
from medinjection.stages.sources import normalize_corpus, normalize_source, stage_source
from tests.conftest import load_script
from tests.support.records import dataset_settings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo" / "sources"


def run_adapter(name: str, raw_dir: Path) -> tuple[dict[str, Record], list[Quarantined]]:
    records, quarantined = {}, []
    for item in ADAPTERS[name](raw_dir, name):
        if isinstance(item, Quarantined):
            quarantined.append(item)
        else:
            records[item.id] = item
    return records, quarantined


def write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_medmcqa_cop_is_zero_based_and_dev_is_test(tmp_path: Path) -> None:
    base = {
        "question": "Q?",
        "opa": "a",
        "opb": "b",
        "opc": "c",
        "opd": "d",
        "exp": None,
        "choice_type": "single",
        "subject_name": "Medicine",
        "topic_name": None,
    }
    write_parquet(
        tmp_path / "data/train-00000-of-00001.parquet",
        [base | {"id": "t1", "cop": 2}, base | {"id": "t2", "cop": 4}],
    )
    write_parquet(
        tmp_path / "data/validation-00000-of-00001.parquet", [base | {"id": "v1", "cop": 0}]
    )
    write_parquet(tmp_path / "data/test-00000-of-00001.parquet", [base | {"id": "x1", "cop": -1}])
    records, quarantined = run_adapter("medmcqa", tmp_path)
    assert records["medmcqa:t1"].answer == "C"
    assert records["medmcqa:t1"].options == (("A", "a"), ("B", "b"), ("C", "c"), ("D", "d"))
    assert records["medmcqa:t1"].meta["split_rule"] == "hash_train_validation"
    assert (records["medmcqa:v1"].split, records["medmcqa:v1"].answer) == ("test", "A")
    assert "medmcqa:x1" not in records  # unlabelled HF test split is not read
    assert [q.raw_id for q in quarantined] == ["t2"]
    assert all(r.language == "en" and r.origin == "translated" for r in records.values())


def test_medmcqa_original_json_form_has_one_based_cop(tmp_path: Path) -> None:
    # the same items in both raw forms: the Hub parquet (0-based cop) and the original JSON
    # Lines release (1-based cop) must give the same gold letters
    base = {"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "exp": None,
            "choice_type": "single", "subject_name": "Medicine", "topic_name": None}  # fmt: skip
    gold = {"t1": 2, "t2": 3, "v1": 0}  # 0-based: C, D, A
    hub, original = tmp_path / "hub", tmp_path / "json"
    write_parquet(hub / "data/train-00000-of-00001.parquet",
                  [base | {"id": i, "cop": gold[i]} for i in ("t1", "t2")])  # fmt: skip
    write_parquet(hub / "data/validation-00000-of-00001.parquet", [base | {"id": "v1", "cop": 0}])
    original.mkdir()
    for name, ids in (("train.json", ("t1", "t2")), ("dev.json", ("v1",))):
        lines = [json.dumps(base | {"id": i, "cop": gold[i] + 1}) for i in ids]
        (original / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (original / "test.json").write_text(json.dumps(base | {"id": "x1"}) + "\n", encoding="utf-8")
    from_hub, _ = run_adapter("medmcqa", hub)
    from_json, quarantined = run_adapter("medmcqa_json", original)
    assert not quarantined and sorted(from_json) == ["medmcqa_json:t1", "medmcqa_json:t2",
                                                     "medmcqa_json:v1"]  # fmt: skip
    answers = {rid.split(":")[1]: (r.answer, r.split) for rid, r in from_json.items()}
    assert answers == {"t1": ("C", "train"), "t2": ("D", "train"), "v1": ("A", "test")}
    assert answers == {rid.split(":")[1]: (r.answer, r.split) for rid, r in from_hub.items()}
    # each adapter refuses the other form's out-of-range index instead of shifting the answer
    (original / "dev.json").write_text(json.dumps(base | {"id": "v2", "cop": 0}) + "\n")
    _, quarantined = run_adapter("medmcqa_json", original)
    assert [q.raw_id for q in quarantined] == ["v2"]
    assert "1..4 of the original JSON (medmcqa_json) form" in quarantined[0].reasons[0]


def test_frenchmedmcqa_single_vs_multiple(tmp_path: Path) -> None:
    answers = {"a": "Un", "b": "Deux", "c": "Trois", "d": "Quatre", "e": "Cinq"}
    items = [
        {
            "id": "m",
            "question": "Lesquelles ?",
            "answers": answers,
            "correct_answers": ["c", "a"],
            "nbr_correct_answers": 2,
        },
        {
            "id": "s",
            "question": "Laquelle ?",
            "answers": answers,
            "correct_answers": ["e"],
            "nbr_correct_answers": 1,
        },
    ]
    (tmp_path / "dev.json").write_text(json.dumps(items), encoding="utf-8")
    records, _ = run_adapter("frenchmedmcqa", tmp_path)
    multi, single = records["frenchmedmcqa:m"], records["frenchmedmcqa:s"]
    assert (multi.task, multi.answer, multi.split) == ("mcq", "A,C", "validation")
    assert (single.task, single.answer) == ("mcqu", "E")
    assert multi.option_letters() == ("A", "B", "C", "D", "E")


def test_mediqal_configs_and_multi_answers(tmp_path: Path) -> None:
    row = {
        "id": "q1",
        "clinical_case": None,
        "question": "Quelles propositions ?",
        "answer_a": "a",
        "answer_b": "b",
        "answer_c": "c",
        "answer_d": "d",
        "answer_e": "é",
        "correct_answers": "C,D",
        "medical_subject": "cardiologie",
        "question_type": "x",
    }
    write_parquet(tmp_path / "mcqm/test-00000-of-00001.parquet", [row])
    oeq = {
        "id": "o1",
        "clinical_case": "Cas.",
        "question": "Traitement ?",
        "answer": "Repos.",
        "medical_subject": "x",
        "question_type": "y",
        "cc_question_number": 1,
    }
    write_parquet(tmp_path / "oeq/test-00000-of-00001.parquet", [oeq])
    records, _ = run_adapter("mediqal", tmp_path)
    assert (records["mediqal:q1"].task, records["mediqal:q1"].answer) == ("mcq", "C,D")
    assert records["mediqal:q1"].context is None
    assert records["mediqal:q1"].options[-1] == ("E", "é")
    o1 = records["mediqal:o1"]
    assert (o1.task, o1.answer, o1.options, o1.context) == ("oeq", "Repos.", None, "Cas.")


def test_pubmedqa_maybe_is_c_and_official_test_ids(tmp_path: Path) -> None:
    item = {
        "QUESTION": "Does X help?",
        "CONTEXTS": ["One.", "Two."],
        "LABELS": [],
        "MESHES": [],
        "YEAR": "2001",
        "final_decision": "maybe",
        "LONG_ANSWER": "Unclear.",
    }
    data = {"11": item, "12": item | {"final_decision": "no"}, "13": item | {"CONTEXTS": []}}
    (tmp_path / "data").mkdir()
    (tmp_path / "data/ori_pqal.json").write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "data/test_ground_truth.json").write_text('{"11": "maybe"}', encoding="utf-8")
    records, quarantined = run_adapter("pubmedqa", tmp_path)
    maybe = records["pubmedqa:11"]
    assert (maybe.answer, maybe.split, maybe.meta["split_rule"]) == ("C", "test", "source")
    assert maybe.options == (("A", "yes"), ("B", "no"), ("C", "maybe"))
    assert maybe.context == "One.\nTwo." and maybe.meta["long_answer"] == "Unclear."
    assert records["pubmedqa:12"].meta["split_rule"] == "hash_train_validation"
    assert records["pubmedqa:12"].answer == "B"
    assert [q.raw_id for q in quarantined] == ["13"]


def test_medxpertqa_answer_choices_are_stripped() -> None:
    question = "A man has fever. What is it?\nAnswer Choices: (A) Flu (B) Cold (C) Sepsis"
    assert strip_answer_choices(question) == "A man has fever. What is it?"
    records, _ = run_adapter("medxpertqa", DEMO / "medxpertqa")
    assert records and all("Answer Choices" not in r.question for r in records.values())
    assert all(len(r.options) == 10 for r in records.values())


def test_mmlu_filters_medical_subjects() -> None:
    records, quarantined = run_adapter("mmlu", DEMO / "mmlu")
    assert {r.specialty for r in records.values()} <= {
        "clinical_knowledge",
        "professional_medicine",
        "college_medicine",
        "anatomy",
        "medical_genetics",
        "college_biology",
    }
    assert not any("SI unit" in r.question for r in records.values())
    assert [q.reasons for q in quarantined] == [("answer 4 is not an index into choices",)]


@pytest.mark.parametrize(
    ("source", "kept", "quarantined"),
    [
        ("mediqal", 43, 2),
        ("frenchmedmcqa", 37, 1),
        ("frbmedqa", 31, 1),
        ("medical_cases_fr", 23, 1),
        ("medical_mqca_fr", 29, 1),
        ("medqa", 36, 2),
        ("pubmedqa", 31, 1),
        ("medmcqa", 36, 1),
        ("medxpertqa", 15, 1),
        ("mmlu", 21, 1),
        ("mmlu_pro", 17, 1),
    ],
)
def test_normalize_demo_sources(tmp_path: Path, source: str, kept: int, quarantined: int) -> None:
    role = (
        "native"
        if source in {"mediqal", "frenchmedmcqa", "frbmedqa", "medical_cases_fr", "medical_mqca_fr"}
        else "translate"
    )
    out = tmp_path / source
    normalize_source(
        source,
        source,
        role,
        DEMO / source,
        out / "records.parquet",
        out / "quarantine.jsonl",
        out / "stats.json",
        dataset_settings(42, 0.15, 0.2, 0.25),
    )
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["kept"], stats["quarantined"]) == (kept, quarantined)
    lines = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert len(lines) == quarantined and all(q["reasons"] and q["source"] == source for q in lines)
    records = read_records(out / "records.parquet")
    assert [r.id for r in records] == sorted(r.id for r in records)
    assert sum(stats["by_task_split"].values()) == kept


def test_quarantine_reasons_duplicate_id_and_rate_limit(tmp_path: Path) -> None:
    out = tmp_path / "q"
    normalize_source(
        "mediqal",
        "mediqal",
        "native",
        DEMO / "mediqal",
        out / "r.parquet",
        out / "q.jsonl",
        out / "s.json",
        dataset_settings(42, 0.15, 0.2, 0.25),
    )
    reasons = {q["raw_id"]: q["reasons"] for q in map(json.loads, open(out / "q.jsonl"))}
    assert reasons["mq-00004"] == [
        "answer letter(s) ['F'] not among options ['A', 'B', 'C', 'D', 'E']"
    ]
    assert reasons["mq-00021"] == ["duplicate id 'mediqal:mq-00021' (the first occurrence is kept)"]
    with pytest.raises(ValueError, match=r"2 of 45 raw items quarantined .*max_quarantine_rate"):
        normalize_source(
            "mediqal",
            "mediqal",
            "native",
            DEMO / "mediqal",
            out / "r.parquet",
            out / "q.jsonl",
            out / "s.json",
            dataset_settings(42, 0.15, 0.2, 0.01),
        )
    with pytest.raises(ValueError, match="language 'en' but role 'native'"):
        normalize_source(
            "mmlu",
            "mmlu",
            "native",
            DEMO / "mmlu",
            out / "r.parquet",
            out / "q.jsonl",
            out / "s.json",
            dataset_settings(42, 0.15, 0.2, 0.0),
        )


def test_hash_split_is_deterministic_and_proportional() -> None:
    splits = [hash_split(f"src:{i}", 42, 0.15, 0.2, "hash") for i in range(4000)]
    assert splits == [hash_split(f"src:{i}", 42, 0.15, 0.2, "hash") for i in range(4000)]
    assert abs(splits.count("test") / 4000 - 0.2) < 0.03
    assert abs(splits.count("validation") / 4000 - 0.15) < 0.03
    assert {hash_split(f"s:{i}", 42, 0.15, 0.2, "hash_train_validation") for i in range(200)} == {
        "train",
        "validation",
    }
    assert splits != [hash_split(f"src:{i}", 7, 0.15, 0.2, "hash") for i in range(4000)]


def test_normalize_is_byte_identical(tmp_path: Path) -> None:
    for name in ("a", "b"):
        normalize_source(
            "pubmedqa",
            "pubmedqa",
            "translate",
            DEMO / "pubmedqa",
            tmp_path / name / "r.parquet",
            tmp_path / name / "q.jsonl",
            tmp_path / name / "s.json",
            dataset_settings(42, 0.15, 0.2, 0.25),
        )
    for file in ("r.parquet", "q.jsonl", "s.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_corpora_yield_twelve_documents(tmp_path: Path) -> None:
    for source in CORPUS_ADAPTERS:
        normalize_corpus(source, source, DEMO / source, tmp_path / f"{source}.parquet")
        documents = read_documents(tmp_path / f"{source}.parquet")
        assert len(documents) == 12 and all(d.id.startswith(f"{source}:") for d in documents)
        kind = "abstract" if source == "morfitt" else "clinical_case"
        assert {d.kind for d in documents} == {kind}
    morfitt = read_documents(tmp_path / "morfitt.parquet")
    assert all(d.specialty and len(d.text) > 200 for d in morfitt)


def test_unknown_adapter_lists_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid: .*'mediqal'"):
        get_adapter("nope")


def test_stage_local_copies_and_hashes(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    location = LocationSettings(kind="local", path=str(DEMO / "frenchmedmcqa"))
    stage_source("frenchmedmcqa", location, tmp_path / "raw", manifest)
    data = json.loads(manifest.read_text())
    assert sorted(data["files"]) == ["dev.json", "test.json", "train.json"]
    assert data["source"] == "frenchmedmcqa" and data["location"] == location.to_dict()
    assert all(len(h) == 64 for h in data["files"].values())
    with pytest.raises(FileNotFoundError, match=r"missing/dir does not exist; provide"):
        stage_source("x", LocationSettings(kind="local", path="missing/dir"), tmp_path / "r2",
                     manifest)  # fmt: skip
    with pytest.raises(ValueError, match="location kind 'url' is not one of"):  # no fetcher
        stage_source("x", LocationSettings(kind="url"), tmp_path / "r3", manifest)


def test_scripts_stage_and_normalize(tmp_path: Path) -> None:
    log = [str(tmp_path / "log.txt")]
    raw, manifest = tmp_path / "raw", tmp_path / "manifest.json"
    load_script("stage_source").main(
        SimpleNamespace(
            input=SimpleNamespace(),
            output=SimpleNamespace(raw=str(raw), manifest=str(manifest)),
            params=SimpleNamespace(
                source="medqa",
                location={"kind": "local", "path": str(DEMO / "medqa")},
                offline=True,
            ),
            log=log,
        )
    )
    out = SimpleNamespace(
        records=str(tmp_path / "r.parquet"),
        quarantine=str(tmp_path / "q.jsonl"),
        stats=str(tmp_path / "s.json"),
        manifest=str(tmp_path / "normalized.manifest.json"),
    )
    params = SimpleNamespace(
        source="medqa",
        adapter="medqa",
        role="translate",
        dataset=dataset_settings(42, 0.15, 0.2, 0.25).to_dict(),
    )
    load_script("normalize_source").main(
        SimpleNamespace(
            input=SimpleNamespace(raw=str(raw), manifest=str(manifest)),
            output=out,
            params=params,
            log=log,
            rule="normalize_source",
        )
    )
    assert json.loads(Path(out.stats).read_text())["kept"] == 36
    recorded = json.loads(Path(out.manifest).read_text())  # what build_dataset checks
    assert recorded["rule"] == "normalize_source"
    assert recorded["files"]["r.parquet"]["rows"] == 36
    from medinjection.stages.sources import stage_source

    corpus_raw, corpus_manifest = tmp_path / "morfitt" / "raw", tmp_path / "morfitt" / "m.json"
    stage_source("morfitt", LocationSettings(kind="local", path=str(DEMO / "morfitt")),
                 corpus_raw, corpus_manifest)  # fmt: skip
    load_script("normalize_corpus").main(
        SimpleNamespace(
            input=SimpleNamespace(raw=str(corpus_raw), manifest=str(corpus_manifest)),
            output=SimpleNamespace(documents=str(tmp_path / "d.parquet"),
                                   manifest=str(tmp_path / "d.manifest.json")),
            params=SimpleNamespace(source="morfitt", adapter="morfitt"),
            log=log,
        )
    )  # fmt: skip
    assert len(read_documents(tmp_path / "d.parquet")) == 12
    recorded = json.loads((tmp_path / "d.manifest.json").read_text())  # what synthesize checks
    assert recorded["rule"] == "normalize_corpus"
    assert recorded["files"]["d.parquet"]["rows"] == 12


def test_pubmedqa_hub_parquet_form_and_long_answer_oeq(tmp_path: Path) -> None:
    row = {
        "pubid": 21645374,
        "question": "Do mitochondria matter?",
        "context": {"contexts": ["Background.", "Results."], "labels": ["B", "R"], "meshes": []},
        "long_answer": "They do, in part.",
        "final_decision": "yes",
    }
    (tmp_path / "pqa_labeled").mkdir()
    write_parquet(
        tmp_path / "pqa_labeled/train-00000-of-00001.parquet",
        [row, row | {"pubid": 7, "long_answer": None}],
    )
    records, _ = run_adapter("pubmedqa", tmp_path)
    mcqu = records["pubmedqa:21645374"]
    assert (mcqu.task, mcqu.answer, mcqu.context) == ("mcqu", "A", "Background.\nResults.")
    assert mcqu.meta["long_answer"] == "They do, in part."
    open_records, quarantined = run_adapter("pubmedqa_oeq", tmp_path)
    oeq = open_records["pubmedqa_oeq:21645374"]
    assert (oeq.task, oeq.options, oeq.answer) == ("oeq", None, "They do, in part.")
    assert oeq.meta["split_key"] == "pubmedqa:21645374" and oeq.meta["final_decision"] == "yes"
    assert [(q.raw_id, q.reasons) for q in quarantined] == [
        ("7", ("no LONG_ANSWER for the open question",))
    ]


def test_pubmedqa_artificial_is_train_validation_only(tmp_path: Path) -> None:
    row = {
        "pubid": 25429730,
        "question": "Is exercise associated with lower mortality?",
        "context": {"contexts": ["Methods.", "Results."], "labels": ["M", "R"], "meshes": ["X"]},
        "long_answer": "Yes, it is.",
        "final_decision": "yes",
    }
    rows = [row, row | {"pubid": 9, "final_decision": "no"}, row | {"pubid": 8, "context": {}}]
    write_parquet(tmp_path / "pqa_artificial/train-00000-of-00001.parquet", rows)
    records, quarantined = run_adapter("pubmedqa_artificial", tmp_path)
    first = records["pubmedqa_artificial:25429730"]
    assert (first.task, first.answer, first.options[1]) == ("mcqu", "A", ("B", "no"))
    assert first.meta["split_rule"] == "hash_train_validation" and first.language == "en"
    assert records["pubmedqa_artificial:9"].answer == "B"
    assert [(q.raw_id, q.reasons) for q in quarantined] == [
        ("8", ("CONTEXTS is not a non-empty list",))
    ]
    with pytest.raises(FileNotFoundError, match="pqa_artificial"):
        list(ADAPTERS["pubmedqa_artificial"](tmp_path / "pqa_artificial" / "none", "x"))


def test_s_editions_local_export_open_and_mcq_items(tmp_path: Path) -> None:
    lines = [
        {"id": "se1", "question": "Quel est le traitement de première intention ?",
         "answer": "Amoxicilline pendant 7 jours.", "specialty": "Infectiologie"},
        {"id": "se2", "question": "Signes de l'hépatite ?", "options": {"b": "Ictère", "a": "Toux"},
         "answer": "b", "split": "test", "context": "Patient de 45 ans, fébrile."},
        {"id": "se3", "question": "Antibiotiques ?", "options": {"A": "Amoxicilline",
         "B": "Paracétamol", "C": "Ceftriaxone"}, "answer": "C ; A"},
        {"question": "sans identifiant", "answer": "x"},
        {"id": "se5", "question": "Q ?", "options": {}, "answer": "A"},
        {"id": "se6", "question": "Q ?", "answer": "r", "split": "dev"},
        {"id": "se7", "question": "Q ?", "options": ["a", "b"], "answer": "A"},
    ]  # fmt: skip
    (tmp_path / "export.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    records, quarantined = run_adapter("s_editions", tmp_path)
    open_q = records["s_editions:se1"]
    assert (open_q.task, open_q.options, open_q.split) == ("oeq", None, "train")
    assert open_q.answer == "Amoxicilline pendant 7 jours." and open_q.specialty == "Infectiologie"
    assert open_q.meta["split_rule"] == "hash" and open_q.origin == "native"
    single = records["s_editions:se2"]
    assert (single.task, single.answer, single.split) == ("mcqu", "B", "test")
    assert (
        single.options == (("A", "Toux"), ("B", "Ictère")) and single.meta["split_rule"] == "source"
    )
    assert single.context == "Patient de 45 ans, fébrile."
    multi = records["s_editions:se3"]
    assert (multi.task, multi.answer) == ("mcq", "A,C")
    reasons = {q.raw_id: q.reasons for q in quarantined}
    assert reasons["export-00004"] == ("missing id",)
    assert "empty options" in reasons["se5"][0]
    assert "split 'dev' not in" in reasons["se6"][0]
    assert "neither a dict" in reasons["se7"][0]
    assert len(records) == 3 and len(quarantined) == 4


def test_study_run_stops_naming_the_s_editions_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from medinjection.config_checks import StudyConfigError, check_before_run

    monkeypatch.chdir(tmp_path)  # neither resources/local/* nor staged copies exist here
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["allow_unpinned"] = True
    with pytest.raises(StudyConfigError) as error:
        check_before_run(config, {"OPENAI_API_KEY": "k", "GEMINI_API_KEY": "k"})
    message = str(error.value)
    assert (
        "sources.s_editions.location.path: 'resources/local/s_editions' does not exist" in message
    )
    assert "https://s-editions.fr/" in message and "sources.deft2021.location.path" in message


def _mmlu_rows(subject: str, n: int) -> list[dict]:
    return [
        {"question": f"{subject} q{i}", "subject": subject, "choices": ["a", "b", "c", "d"],
         "answer": i % 4}
        for i in range(n)
    ]  # fmt: skip


def test_mmlu_reads_the_real_snapshot_layout_once(tmp_path: Path) -> None:
    """cais/mmlu@c30699e: subject folders, all/ repeating them (+ auxiliary_train) and
    auxiliary_train/."""
    snapshot = tmp_path / "snapshot"
    for split, n in (("dev", 5), ("validation", 3), ("test", 7)):
        write_parquet(
            snapshot / "anatomy" / f"{split}-00000-of-00001.parquet", _mmlu_rows("anatomy", n)
        )
        write_parquet(
            snapshot / "astronomy" / f"{split}-00000-of-00001.parquet", _mmlu_rows("astronomy", n)
        )
        both = _mmlu_rows("anatomy", n) + _mmlu_rows("astronomy", n)
        write_parquet(snapshot / "all" / f"{split}-00000-of-00001.parquet", both)
    aux = [{**row, "subject": ""} for row in _mmlu_rows("x", 4)]
    write_parquet(snapshot / "all" / "auxiliary_train-00000-of-00001.parquet", aux)
    write_parquet(snapshot / "auxiliary_train" / "train-00000-of-00001.parquet", aux)
    records, quarantined = run_adapter("mmlu", snapshot)
    assert not quarantined
    assert len(records) == 15  # anatomy's 5 + 3 + 7 rows, once each
    assert {r.specialty for r in records.values()} == {"anatomy"}
    assert Counter(r.split for r in records.values()) == {"train": 5, "validation": 3, "test": 7}
    # all/ alone (what staging only all/ would give) yields the same ids
    only_all = tmp_path / "only_all"
    for path in (snapshot / "all").iterdir():
        write_parquet(only_all / "all" / path.name, pq.read_table(path).to_pylist())
    again, _ = run_adapter("mmlu", only_all)
    assert sorted(again) == sorted(records)
    with pytest.raises(FileNotFoundError, match="no medical subject folder"):
        run_adapter("mmlu", snapshot / "auxiliary_train")


def test_study_config_stages_only_the_medical_mmlu_folders() -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    files = config["sources"]["mmlu"]["location"]["files"]
    assert sorted(f.removesuffix("/*") for f in files) == sorted(MMLU_MEDICAL_SUBJECTS)


def test_diamed_reads_the_archive_splits_only(tmp_path: Path) -> None:
    """Dr-BERT/DiaMED data.zip as DiaMed.py reads it: splits/*.json, field `domain` (a list)."""
    case = {"identifier": "c1", "clinical_case": "Un patient de 60 ans.", "domain": ["I00-I99"]}
    other = {"identifier": "c2", "clinical_case": "Une patiente de 30 ans.", "domain": []}
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.json").write_text(json.dumps([case, other]))
    (tmp_path / "splits" / "test.json").write_text(json.dumps([case]))  # repeated case
    (tmp_path / "all_cases.json").write_text(json.dumps([case, other, {"identifier": "c3"}]))
    (tmp_path / "__MACOSX" / "splits").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "splits" / "._train.json").write_bytes(b"\x00\x05\x16\x07")
    documents = list(CORPUS_ADAPTERS["diamed"](tmp_path, "diamed"))
    assert [(d.id, d.specialty) for d in documents] == [
        ("diamed:c1", "I00-I99"),
        ("diamed:c2", None),
    ]
