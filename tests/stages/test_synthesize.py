"""Synthetic QA generation: validation, quarantine, dedup, ids and the script adapter (replay)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from medinjection.llm.replay import completion_body, recording_entry, write_recording
from medinjection.llm.structured import parse_reply, with_feedback
from medinjection.llm.synthesis import plan_jobs
from medinjection.manifests import write_manifest
from medinjection.records import read_records
from medinjection.settings import EndpointSettings, SynthesisSettings
from medinjection.sources.base import Document, write_documents
from tests.conftest import load_script

URL = "https://api.openai.com/v1"
MODEL = "gpt-4o"
ENDPOINT = {
    "base_url": URL,
    "api_key_env": "UNUSED_IN_REPLAY",
    "max_concurrency": 3,
    "requests_per_minute": 500,
    "tokens_per_minute": 200000,
    "max_retries": 1,
    "timeout_s": 10,
}
TASKS = {"factual_qa": 2, "medication_safety": 1}


def synthesis_block(task_types: dict[str, int], max_quarantine_rate: float) -> dict:
    """A `synthesis` config block (the rule's params.synthesis) for MODEL at 0.7, 512 tokens."""
    return {
        "endpoint": "openai",
        "model": MODEL,
        "temperature": 0.7,
        "max_tokens": 512,
        "submit": "direct",
        "max_quarantine_rate": max_quarantine_rate,
        "mcq_per_document": 2,
        "task_types": task_types,
    }


DOCS = [
    Document(
        "deft2021:c1",
        "deft2021",
        "clinical_case",
        "cardiologie",
        "Un homme de 60 ans consulte pour une douleur thoracique. La troponine est élevée.",
    ),
    Document(
        "deft2021:c2",
        "deft2021",
        "abstract",
        None,
        "Nous rapportons une série de 12 patients traités par amiodarone.",
    ),
]


def qa(*pairs: tuple[str, str]) -> str:
    return json.dumps({"items": [{"question": q, "answer": a} for q, a in pairs]})


def mcq(question: str, n_options: int, answers: list[str]) -> dict:
    options = [{"letter": "ABCDE"[i], "text": f"proposition {i}"} for i in range(n_options)]
    return {"question": question, "options": options, "answers": answers}


REPLIES = {
    ("deft2021:c1", "factual_qa"): qa(("Âge du patient ?", "60 ans."), ("Motif ?", "Douleur.")),
    ("deft2021:c1", "medication_safety"): qa(("Quel risque ?", "  ")),
    ("deft2021:c1", "mcq"): json.dumps(
        {"items": [mcq("Quel marqueur ?", 5, ["B"]), mcq("Quel examen ?", 4, ["E"])]}
    ),
    ("deft2021:c2", "factual_qa"): qa(
        ("Combien de patients ?", "12."), ("Combien  de patients?", "12")
    ),
    ("deft2021:c2", "medication_safety"): "{truncated",
    ("deft2021:c2", "mcq"): json.dumps({"items": [mcq("Quels traitements ?", 5, ["C", "A"])]}),
}
RETRY_REPLY = qa(("Quelle surveillance ?", "La thyroïde."))


@pytest.fixture()
def run(tmp_path: Path):
    docs_path = tmp_path / "documents.parquet"
    write_documents(DOCS, docs_path)
    documents_manifest = tmp_path / "documents.manifest.json"  # what normalize_corpus writes
    write_manifest(documents_manifest, "normalize_corpus", [docs_path])
    jobs = plan_jobs(DOCS, TASKS, 2, MODEL, 0.7, 512, 42)
    entries = []
    for job in jobs:
        text = REPLIES[(job.document.id, job.task_type)]
        entries.append(recording_entry(URL, job.request, completion_body(MODEL, text, "k" * 16)))
        if text == "{truncated":
            errors = parse_reply(SimpleNamespace(text=text, finish_reason="stop"))[1]
            retry = with_feedback(job.request, text, errors)
            entries.append(
                recording_entry(URL, retry, completion_body(MODEL, RETRY_REPLY, "r" * 16))
            )
    write_recording(entries, tmp_path / "rec.jsonl")

    def go() -> tuple[dict, dict]:
        module = load_script("synthesize")
        params = SimpleNamespace(
            source="deft2021",
            endpoint=ENDPOINT,
            synthesis=synthesis_block(TASKS, max_quarantine_rate=0.5),
            mode="replay",
            replay_file=str(tmp_path / "rec.jsonl"),
            submit="direct",
            batch={"poll_s": 1, "max_requests": 100, "max_bytes": 10**6, "rounds": 1},
            price={"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0, "batch_discount": 0.5},
            cache_path=str(tmp_path / "c.sqlite"),
            seed=42,
        )
        smk = SimpleNamespace(
            input=SimpleNamespace(
                documents=str(docs_path),
                replay=[str(tmp_path / "rec.jsonl")],
                manifest=str(documents_manifest),
            ),
            output=SimpleNamespace(
                records=str(tmp_path / "r.parquet"),
                usage=str(tmp_path / "u.json"),
                manifest=str(tmp_path / "manifest.json"),
            ),
            params=params,
            log=[str(tmp_path / "s.log")],
        )
        module.main(smk)
        records = {r.id: r for r in read_records(tmp_path / "r.parquet")}
        return records, json.loads((tmp_path / "u.json").read_text())

    return go


def test_valid_items_kept_invalid_quarantined(run, tmp_path: Path) -> None:
    records, report = run()
    assert sorted(records) == [
        "deft2021:c1:factual_qa:0",
        "deft2021:c1:factual_qa:1",
        "deft2021:c1:mcq:0",
        "deft2021:c2:factual_qa:0",
        "deft2021:c2:mcq:0",
        "deft2021:c2:medication_safety:0",
    ]
    first = records["deft2021:c1:factual_qa:0"]
    assert (first.origin, first.split, first.task, first.language) == (
        "synthetic",
        "train",
        "oeq",
        "fr",
    )
    assert (
        first.context == DOCS[0].text
        and first.answer == "60 ans."
        and first.specialty == "cardiologie"
    )
    assert first.meta == {
        "task_type": "factual_qa",
        "document_id": "deft2021:c1",
        "generator": MODEL,
    }
    single, multi = records["deft2021:c1:mcq:0"], records["deft2021:c2:mcq:0"]
    assert (single.task, single.answer, len(single.options)) == ("mcqu", "B", 5)
    assert (multi.task, multi.answer) == ("mcq", "A,C")
    assert records["deft2021:c2:medication_safety:0"].answer == "La thyroïde."  # after the retry
    reasons = {q["id"]: q["reasons"] for q in report["quarantined"]}
    assert reasons == {
        "deft2021:c1:medication_safety:0": ["empty answer"],
        "deft2021:c1:mcq:1": ["answer letter(s) ['E'] not among options ['A', 'B', 'C', 'D']"],
        "deft2021:c2:mcq:1": ["reply holds 1 of 2 items"],
        "deft2021:c2:factual_qa:1": ["duplicate question of deft2021:c2:factual_qa:0"],
    }
    # the script keeps them beside the job's log, outside its outputs (a failed job's are deleted)
    kept = [json.loads(line) for line in (tmp_path / "s.quarantine.jsonl").read_text().splitlines()]
    assert {q["id"]: q["reasons"] for q in kept} == reasons
    assert report["counts"] == {
        "retried": 1,
        "documents": 2,
        "requests": 6,
        "records": 6,
        "oeq": 4,
        "mcqu": 1,
        "mcq": 1,
        "quarantined": 4,
    }
    assert report["usage"]["requests_sent"] == 7


def test_documents_changed_after_normalize_corpus_are_refused(run, tmp_path: Path) -> None:
    from medinjection.manifests import ManifestMismatch

    write_documents(DOCS[:1], tmp_path / "documents.parquet")
    with pytest.raises(ManifestMismatch, match=r"documents.parquet: 1 rows, .* records 2 rows, "
                       r".*--forcerun normalize_corpus\), then synthesize$"):  # fmt: skip
        run()
    assert not (tmp_path / "u.json").exists()  # refused before any request


def test_rerun_uses_cache(run) -> None:
    run()
    records, report = run()
    # replies with no usable item (c1's medication_safety, c2's truncated first reply) were never
    # cached: asked again; the 5 usable ones answer from the cache
    assert len(records) == 6 and report["usage"]["requests_sent"] == 2
    assert report["usage"]["cache_hits"] == 5


def test_requests_carry_document_and_schema() -> None:
    jobs = plan_jobs(DOCS[:1], {"factual_qa": 2}, 1, MODEL, 0.7, 512, 42)
    assert [(j.task_type, j.count) for j in jobs] == [("factual_qa", 2), ("mcq", 1)]
    oeq, mcq_job = (j.request for j in jobs)
    assert (
        DOCS[0].text in oeq.messages[-1]["content"]
        and "exactement 2" in oeq.messages[-1]["content"]
    )
    assert oeq.params["seed"] == 42 and oeq.params["response_format"]["type"] == "json_schema"
    item = mcq_job.params["response_format"]["json_schema"]["schema"]["properties"]["items"][
        "items"
    ]
    assert item["properties"]["answers"]["items"]["enum"] == ["A", "B", "C", "D", "E"]


def test_unknown_task_type_lists_valid_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown \['poetry'\].*clinical_note_summarization"):
        plan_jobs(DOCS, {"poetry": 1}, 0, MODEL, 0.7, 512, 42)


def load_tool():
    module = load_script("record_demo_llm", "tools")
    return module


def test_recorder_authored_replies_pass_validation(tmp_path: Path) -> None:
    tool = load_tool()
    third = Document(
        "deft2021:c3",
        "deft2021",
        "clinical_case",
        None,
        "Une femme de 30 ans a de la fièvre. La CRP est à 80 mg/L. "
        "La radiographie montre un foyer. Elle reçoit de l'amoxicilline.",
    )
    fourth = Document(
        "deft2021:c4",
        "deft2021",
        "abstract",
        None,
        "Cette étude porte sur 40 enfants asthmatiques. Le salbutamol a réduit les crises.",
    )
    docs = [*DOCS, third, fourth]
    tasks = {name: 1 for name in tool.QUESTIONS}
    jobs = plan_jobs(docs, tasks, 2, MODEL, 0.7, 512, 42)
    pool = [s for d in docs for s in tool.sentences(d.text)]
    entries = tool.synthesis_entries(jobs, pool, URL)
    assert all(e["note"].startswith("authored stand-in") for e in entries)
    assert all(e["response"]["id"].startswith("chatcmpl-authored-") for e in entries)
    write_recording(entries, tmp_path / "rec.jsonl")
    write_documents(docs, tmp_path / "docs.parquet")
    from medinjection.stages.synthesize import synthesize

    synthesize(
        tmp_path / "docs.parquet",
        tmp_path / "r.parquet",
        tmp_path / "u.json",
        "deft2021",
        SynthesisSettings.from_dict(synthesis_block(tasks, max_quarantine_rate=0.0), "synthesis"),
        EndpointSettings.from_dict(ENDPOINT, "endpoint"),
        mode="replay",
        replay_file=str(tmp_path / "rec.jsonl"),
        cache_path=str(tmp_path / "c.sqlite"),
        seed=42,
        quarantine_path=tmp_path / "q.jsonl",
    )
    report = json.loads((tmp_path / "u.json").read_text())
    assert report["quarantined"] == [] and report["counts"]["records"] == 4 * (8 + 2)
    # c2 has a single sentence, so both of its MCQs have one true option
    assert (report["counts"]["mcqu"], report["counts"]["mcq"]) == (5, 3)
    records = read_records(tmp_path / "r.parquet")
    mcq_item = next(r for r in records if r.id == "deft2021:c3:mcq:0")
    true_text = dict(mcq_item.options)[mcq_item.answer]
    assert true_text in third.text  # the right option is a sentence of this very document
    assert all(t not in third.text for letter, t in mcq_item.options if letter != mcq_item.answer)
