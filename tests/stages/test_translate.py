"""EN->FR translation: structure preservation, retry then quarantine, sharding, script adapters."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from medinjection.llm.replay import completion_body, recording_entry, write_recording
from medinjection.llm.structured import parse_reply, with_feedback
from medinjection.llm.translation import apply_translation, translation_request
from medinjection.manifests import ManifestMismatch
from medinjection.records import Record, read_records, write_records
from medinjection.stages.translate import gather_shards, shard_of
from tests.conftest import load_script

URL = "https://api.openai.com/v1"
MODEL = "gpt-4o-mini"
ENDPOINT = {
    "base_url": URL,
    "api_key_env": "UNUSED_IN_REPLAY",
    "max_concurrency": 2,
    "requests_per_minute": 500,
    "tokens_per_minute": 200000,
    "max_retries": 1,
    "timeout_s": 10,
}
SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"


def mcq(rid: str, answer: str = "B", task: str = "mcqu") -> Record:
    options = (("A", "Aspirin"), ("B", "Heparin"), ("C", "Warfarin"), ("D", "Insulin"))
    return Record(
        rid,
        "translated",
        "medqa",
        task,
        "test",
        f"Which drug ({rid})?",
        answer,
        options,
        language="en",
        meta={"raw": 1},
    )


OEQ = Record(
    "pubmedqa:7",
    "translated",
    "pubmedqa",
    "oeq",
    "train",
    "Does it work?",
    "Yes, it works.",
    context="An abstract.",
    language="en",
    meta={"long_answer": "It works well."},
)
FR_OPTIONS = {"A": "Aspirine", "B": "Héparine", "C": "Warfarine", "D": "Insuline"}


def body(content: str) -> dict:
    return completion_body(MODEL, content, hashlib.sha256(content.encode()).hexdigest())


def request(record: Record):
    return translation_request(record, MODEL, 0.0, 256)


def retry_of(record: Record, bad: str):
    """The retry request exactly as the code builds it (same helpers, same reasons)."""
    reply, errors = parse_reply(SimpleNamespace(text=bad, finish_reason="stop"))
    if reply is not None:
        errors = apply_translation(record, reply, MODEL)[1]
    return with_feedback(request(record), bad, errors)


def good_mcq() -> str:
    return json.dumps({"question": "Quel médicament ?", "options": FR_OPTIONS})


@pytest.fixture()
def fixture(tmp_path: Path) -> SimpleNamespace:
    ok, fixed, lost = mcq("medqa:1"), mcq("medqa:2", "A,C", "mcq"), mcq("medqa:3")
    missing_d = json.dumps({"question": "Q ?", "options": {k: FR_OPTIONS[k] for k in "ABC"}})
    oeq_reply = {
        "question": "Ça marche ?",
        "context": "Un résumé.",
        "answer": "Oui.",
        "long_answer": "Ça marche bien.",
    }
    entries = [
        (request(ok), good_mcq()),
        (request(OEQ), json.dumps(oeq_reply, ensure_ascii=False)),
        (request(fixed), missing_d),
        (retry_of(fixed, missing_d), good_mcq()),
        (request(lost), missing_d),
        (retry_of(lost, missing_d), "{not json"),
    ]
    replay = tmp_path / "rec.jsonl"
    write_recording([recording_entry(URL, req, body(text)) for req, text in entries], replay)
    records = tmp_path / "en.parquet"
    write_records([ok, OEQ, fixed, lost], records)
    return SimpleNamespace(replay=replay, records=records, tmp=tmp_path)


def shard_manifest(fx: SimpleNamespace, shard: int) -> Path:
    return fx.tmp / f"shard_{shard}.manifest.json"


def run_shard(fx: SimpleNamespace, shard: int, shards: int) -> tuple[list[Record], dict]:
    module = load_script("translate_shard")
    out, usage = fx.tmp / f"shard_{shard}.parquet", fx.tmp / f"shard_{shard}.usage.json"
    params = SimpleNamespace(
        shard=shard,
        shards=shards,
        endpoint=ENDPOINT,
        model=MODEL,
        temperature=0.0,
        max_tokens=256,
        mode="replay",
        replay_file=str(fx.replay),
        submit="direct",
        batch={"poll_s": 1, "max_requests": 100, "max_bytes": 10**6, "rounds": 1},
        price={"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0, "batch_discount": 0.5},
        cache_path=str(fx.tmp / f"cache_{shard}.sqlite"),
        max_quarantine_rate=0.5,
    )
    from medinjection.manifests import write_manifest

    normalized = fx.tmp / "normalized.manifest.json"  # what normalize_source writes
    write_manifest(normalized, "normalize_source", [fx.records])
    smk = SimpleNamespace(
        input=SimpleNamespace(
            records=str(fx.records), replay=[str(fx.replay)], manifest=str(normalized)
        ),
        output=SimpleNamespace(
            records=str(out), usage=str(usage), manifest=str(shard_manifest(fx, shard))
        ),
        params=params,
        log=[str(fx.tmp / f"log_{shard}.log")],
    )
    module.main(smk)
    return read_records(out), json.loads(usage.read_text())


def test_structure_preserved_retry_and_quarantine(fixture) -> None:
    records, report = run_shard(fixture, 0, 1)
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == ["medqa:1", "medqa:2", "pubmedqa:7"]
    one = by_id["medqa:1"]
    assert (one.origin, one.language, one.answer, one.task) == ("translated", "fr", "B", "mcqu")
    assert one.options == tuple(FR_OPTIONS.items()) and one.question == "Quel médicament ?"
    assert one.meta["translation_model"] == MODEL and one.meta["raw"] == 1
    assert one.meta["en_id"] == "medqa:1" and len(one.meta["en_sha256"]) == 64
    assert by_id["medqa:2"].answer == "A,C"  # fixed by the retry, gold letters untouched
    oeq = by_id["pubmedqa:7"]
    assert (oeq.answer, oeq.context, oeq.meta["long_answer"]) == (
        "Oui.",
        "Un résumé.",
        "Ça marche bien.",
    )
    assert report["counts"] == {"retried": 2, "records_in": 4, "translated": 3, "quarantined": 1}
    [lost] = report["quarantined"]
    assert lost["id"] == "medqa:3" and lost["source"] == "medqa"
    assert (
        lost["reasons"][0]
        == "attempt 1: option letters ['A', 'B', 'C'] differ from ['A', 'B', 'C', 'D']"
    )
    assert lost["reasons"][1].startswith("attempt 2: reply is not valid JSON")
    # the script keeps it beside the job's log, outside its outputs (a failed job's are deleted)
    [kept] = map(json.loads, (fixture.tmp / "log_0.quarantine.jsonl").read_text().splitlines())
    assert kept == lost
    assert report["usage"]["requests_sent"] == 6 and report["usage"]["cache_hits"] == 0


def test_second_run_is_served_from_cache(fixture) -> None:
    run_shard(fixture, 0, 1)
    records, report = run_shard(fixture, 0, 1)
    assert len(records) == 3
    # the 3 valid replies answer from the cache; the 3 unusable ones were never cached: asked again
    assert (report["usage"]["requests_sent"], report["usage"]["cache_hits"]) == (3, 3)


def test_letters_and_gold_are_never_sent() -> None:
    sent = json.loads(request(mcq("medqa:1", "B")).messages[-1]["content"])
    assert sent == {"question": "Which drug (medqa:1)?", "options": dict(mcq("medqa:1").options)}
    assert "answer" not in sent  # the gold letter stays out of the request
    schema = request(mcq("medqa:1")).params["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["options"]["required"] == ["A", "B", "C", "D"]


def test_reply_changing_structure_is_rejected() -> None:
    record = mcq("medqa:1")
    extra = {"question": "Q", "options": {**FR_OPTIONS, "E": "Autre"}}
    assert apply_translation(record, extra, MODEL)[1] == [
        "option letters ['A', 'B', 'C', 'D', 'E'] differ from ['A', 'B', 'C', 'D']"
    ]
    blank = {"question": "  ", "options": FR_OPTIONS}
    assert apply_translation(record, blank, MODEL)[1] == ["empty or non-string question"]
    added = {"question": "Q", "options": FR_OPTIONS, "answer": "A"}
    assert "unexpected ['answer']" in apply_translation(record, added, MODEL)[1][0]


def test_shards_partition_every_record_once(fixture) -> None:
    ids = [f"medqa:{i}" for i in range(200)]
    parts = [{i for i in ids if shard_of(i, 3) == s} for s in range(3)]
    assert set().union(*parts) == set(ids) and sum(len(p) for p in parts) == 200
    assert all(len(p) > 40 for p in parts)
    assert [shard_of(f"medqa:{i}", 3) for i in range(10)] == [0, 0, 2, 2, 1, 1, 0, 0, 0, 0]
    got = [run_shard(fixture, s, 2)[0] for s in (0, 1)]
    assert sorted(r.id for part in got for r in part) == ["medqa:1", "medqa:2", "pubmedqa:7"]
    # the rule gather_translation: each shard and usage report checked against its manifest
    tmp = fixture.tmp
    smk = SimpleNamespace(
        input=SimpleNamespace(
            shards=[str(tmp / f"shard_{s}.parquet") for s in (0, 1)],
            usage=[str(tmp / f"shard_{s}.usage.json") for s in (0, 1)],
            manifests=[str(shard_manifest(fixture, s)) for s in (0, 1)],
        ),
        output=SimpleNamespace(records=str(tmp / "all.parquet"), manifest=str(tmp / "m.json")),
        params=SimpleNamespace(max_quarantine_rate=0.5),
        log=[str(tmp / "gather.log")],
    )
    load_script("gather_translation").main(smk)
    assert sorted(r.id for r in read_records(tmp / "all.parquet")) == sorted(
        r.id for part in got for r in part
    )
    assert len(got[0]) == 2  # medqa:1, pubmedqa:7 (medqa:3 quarantined)
    write_records(got[0][:1], tmp / "shard_0.parquet")  # a shard cut after translate_shard
    with pytest.raises(ManifestMismatch, match=r"shard_0.parquet: 1 rows, .* records 2 rows, "
                       r".*--forcerun translate_shard\), then gather_translation$"):  # fmt: skip
        load_script("gather_translation").main(smk)


def test_gather_concatenates_and_rejects_duplicates(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_records([mcq("medqa:1")], a)
    write_records([mcq("medqa:2")], b)
    gather_shards([a, b], tmp_path / "all.parquet")
    assert [r.id for r in read_records(tmp_path / "all.parquet")] == ["medqa:1", "medqa:2"]
    write_records([mcq("medqa:1")], b)
    with pytest.raises(ValueError, match="medqa:1 appears in both"):
        gather_shards([a, b], tmp_path / "all.parquet")


def test_a_shard_stops_alone_only_beyond_chance_and_the_source_rate_is_checked_at_gather(
    tmp_path: Path,
) -> None:
    from medinjection.llm.structured import SHARD_CHANCE, QuarantineRateError, loss_beyond_chance

    # the full-scale rehearsal: PubMedQA's 1,000 items in 16 shards, 3 of a 54-item shard lost
    # at a 1% loss rate overall stopped the run at the 5% limit
    assert not loss_beyond_chance(3, 54, 0.05, SHARD_CHANCE)
    assert loss_beyond_chance(20, 54, 0.05, SHARD_CHANCE)  # a broken endpoint still stops
    assert loss_beyond_chance(4, 4, 0.25, SHARD_CHANCE)
    assert loss_beyond_chance(1, 13000, 0.0, SHARD_CHANCE)  # a limit of 0 allows no loss
    assert not loss_beyond_chance(700, 13000, 0.05, SHARD_CHANCE)  # 5.4%: left to the source
    assert loss_beyond_chance(800, 13000, 0.05, SHARD_CHANCE)
    shards, usages = [], []
    for k, (records_in, translated) in enumerate(((54, 51), (60, 60), (50, 49))):
        shard, usage = tmp_path / f"shard_{k}.parquet", tmp_path / f"shard_{k}.usage.json"
        write_records([mcq(f"medqa:{k}")], shard)
        counts = {"records_in": records_in, "translated": translated}
        usage.write_text(json.dumps({"counts": counts}))
        shards.append(shard)
        usages.append(usage)
    out = tmp_path / "all.parquet"
    gather_shards(shards, out, usages, max_quarantine_rate=0.05)  # 4 of 164: 2.4%
    assert len(read_records(out)) == 3
    out.unlink()
    with pytest.raises(QuarantineRateError, match=r"4 of 164 items lost \(2.4% > translation"):
        gather_shards(shards, out, usages, max_quarantine_rate=0.02)
    assert not out.exists()


def test_non_english_input_is_refused(tmp_path: Path) -> None:
    from medinjection.stages.translate import select_shard

    french = Record("mediqal:1", "native", "mediqal", "oeq", "train", "Q ?", "R.", language="fr")
    with pytest.raises(ValueError, match=r"not English \(first mediqal:1\).*role"):
        select_shard([french], 0, 1)


def test_recorder_translation_reply_round_trip(tmp_path: Path) -> None:
    tool = load_script("record_demo_llm", "tools")
    pairs = {
        "Does it work?": "Ça marche ?",
        "An abstract.": "Un résumé.",
        "Yes, it works.": "Oui, ça marche.",
        "It works well.": "Ça marche bien.",
    }
    missing: set[str] = set()
    text = tool.translation_reply(OEQ, pairs, missing)
    assert missing == set()
    write_recording([tool.entry(URL, request(OEQ), text)], tmp_path / "rec.jsonl")
    write_records([OEQ], tmp_path / "en.parquet")
    from medinjection.settings import EndpointSettings
    from medinjection.stages.translate import translate_shard

    translate_shard(
        tmp_path / "en.parquet",
        tmp_path / "fr.parquet",
        tmp_path / "u.json",
        0,
        1,
        EndpointSettings.from_dict(ENDPOINT, "endpoint"),
        MODEL,
        0.0,
        256,
        "replay",
        str(tmp_path / "rec.jsonl"),
        str(tmp_path / "c.sqlite"),
        max_quarantine_rate=0.0,
        quarantine_path=tmp_path / "q.jsonl",
    )
    [fr] = read_records(tmp_path / "fr.parquet")
    assert (fr.question, fr.answer, fr.meta["long_answer"]) == (
        "Ça marche ?",
        "Oui, ça marche.",
        "Ça marche bien.",
    )
    tool.translation_reply(mcq("medqa:9"), pairs, missing)
    assert "Which drug (medqa:9)?" in missing and "Aspirin" in missing  # reported, never guessed


SECOND_RUN = """
import json, sys
from pathlib import Path
from types import SimpleNamespace

import medinjection
from tests.stages.test_translate import run_shard

assert medinjection.__file__.startswith(sys.argv[2]), medinjection.__file__  # the edited copy
tmp = Path(sys.argv[1])
fx = SimpleNamespace(replay=tmp / "rec.jsonl", records=tmp / "en.parquet", tmp=tmp)
print(json.dumps(run_shard(fx, 0, 1)[1]["usage"]))
"""


def test_code_change_reruns_the_job_but_pays_no_cached_request(fixture, tmp_path: Path) -> None:
    import shutil
    import sqlite3
    import subprocess
    import sys

    from medinjection.fingerprint import PACKAGE_DIR, script_fingerprint

    assert run_shard(fixture, 0, 1)[1]["usage"]["requests_sent"] == 6  # paid once
    # replies the stage's check rejected are kept apart, never cached (issue 14): a rerun asks
    # exactly those again, and every accepted reply is answered from the cache
    with sqlite3.connect(fixture.tmp / "cache_0.sqlite") as db:
        rejected = db.execute("SELECT COUNT(DISTINCT key) FROM rejected").fetchone()[0]
    accepted = 6 - rejected
    assert accepted > 0
    # a code change of the translation stage that leaves the requests as they were
    copy = tmp_path / "pkg" / "medinjection"
    shutil.copytree(PACKAGE_DIR, copy)
    module = copy / "llm" / "translation.py"
    old = 'checks[i].outcome(result), "translate"'  # the stage's name in its log lines
    text = module.read_text(encoding="utf-8")
    assert old in text
    module.write_text(text.replace(old, old.replace('"translate"', '"translation"')))
    script = SCRIPTS / "translate_shard.py"
    # the rule's code fingerprint sees it: Snakemake reruns translate_shard...
    assert script_fingerprint(script, copy) != script_fingerprint(script, PACKAGE_DIR)
    proc = subprocess.run(
        [sys.executable, "-c", SECOND_RUN, str(fixture.tmp), str(copy)],
        cwd=SCRIPTS.parents[1],
        env={**os.environ, "PYTHONPATH": str(copy.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    usage = json.loads(proc.stdout.strip().splitlines()[-1])
    # ...and the rerun is answered by the cache, keyed on the request content: nothing re-paid
    assert (usage["requests_sent"], usage["cache_hits"]) == (rejected, accepted)
