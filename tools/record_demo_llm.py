"""Write resources/demo/llm/recorded.jsonl: the replay answers for every LLM request of the demo.

THE RESPONSES ARE AUTHORED STAND-INS, NOT REAL GPT OUTPUTS. Translation replies are assembled from
the authored EN->FR pairs of resources/demo/llm/authored_translations.jsonl (written by
tools/make_demo_fixtures.py); the translation-quality segments of
resources/demo/llm/parallel_en_fr.jsonl are answered with the hand-written, deliberately imperfect
translations of resources/demo/llm/parallel_authored_mt.jsonl (so BLEU is not 100); synthesis
replies are composed here, deterministically, from the sentences of each document (questions about
a sentence, answers drawn from it, MCQ distractors taken from other documents). Each line is marked
with a "note" saying so, and each response id starts with "chatcmpl-authored-".

Request keys are computed by the very functions the workflow uses (translation_request,
plan_jobs, request_key), so a recording can never drift from the code: when the code or the
fixtures change, rerun this tool. The English records and the documents are produced by the data
stage's own functions (stage_source, normalize_source, normalize_corpus) in a temporary folder.

Usage: python tools/record_demo_llm.py [--root ROOT] [--config PATH] [--out PATH] [--pairs PATH]
(relative paths in the config, such as sources.*.location.path, are resolved against --root)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from medinjection.llm.client import ChatRequest, request_key
from medinjection.llm.quality import read_parallel
from medinjection.llm.replay import completion_body, recording_entry, write_recording
from medinjection.llm.synthesis import Job, plan_jobs
from medinjection.llm.translation import payload_request, translation_payload, translation_request
from medinjection.records import Record, read_records
from medinjection.settings import DatasetSettings, LocationSettings
from medinjection.sources.base import Document, read_documents
from medinjection.stages.sources import normalize_corpus, normalize_source, stage_source

ROOT = Path(__file__).resolve().parents[1]
RECORDING = "resources/demo/llm/recorded.jsonl"
PAIRS = "resources/demo/llm/authored_translations.jsonl"
NOTE = "authored stand-in response written by tools/record_demo_llm.py, not a real GPT output"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Synthesis question templates per task type: {kind} is the document kind, {cue} a sentence start.
QUESTIONS: dict[str, str] = {
    "clinical_note_summarization": "Résumez les éléments essentiels de ce {kind} (point {n}).",
    "factual_qa": "Que rapporte le document à propos de « {cue} » ?",
    "differential_diagnosis": "Quels diagnostics évoquer dans ce {kind} devant « {cue} » ?",
    "treatment_plan": "Quelle prise en charge ce {kind} justifie-t-il au vu de « {cue} » ?",
    "lab_interpretation": "Comment interpréter l'élément « {cue} » rapporté dans ce {kind} ?",
    "patient_instructions": "Qu'expliquer simplement au patient à propos de « {cue} » ?",
    "clinical_reasoning_explanation": "Expliquez le raisonnement qui part de « {cue} ».",
    "medication_safety": "Quel point de sécurité du traitement découle de « {cue} » ?",
}
KINDS = {"clinical_case": "cas clinique", "abstract": "résumé"}


def sentences(text: str) -> list[str]:
    """The sentences of a text (split after . ! ? followed by whitespace)."""
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def norm(text: str) -> str:
    """Lookup form of a string: NFC, stripped, inner whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def load_pairs(path: Path) -> dict[str, str]:
    """English -> French from a JSONL of {"en", "fr"} pairs."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `python tools/make_demo_fixtures.py` first")
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            pair = json.loads(line)
            pairs[norm(pair["en"])] = pair["fr"]
    return pairs


def translate_text(text: str, pairs: Mapping[str, str], missing: set[str]) -> str:
    """French for an English string: the whole string, else line by line (joined contexts)."""
    if norm(text) in pairs:
        return pairs[norm(text)]
    lines = text.split("\n")
    if len(lines) > 1 and all(norm(line) in pairs for line in lines if line.strip()):
        return "\n".join(pairs[norm(line)] if line.strip() else line for line in lines)
    missing.add(text)
    return text


def translation_reply(record: Record, pairs: Mapping[str, str], missing: set[str]) -> str:
    """The authored JSON reply to a record's translation request."""
    reply: dict[str, Any] = {}
    for key, value in translation_payload(record).items():
        if isinstance(value, dict):
            reply[key] = {k: translate_text(v, pairs, missing) for k, v in value.items()}
        else:
            reply[key] = translate_text(value, pairs, missing)
    return json.dumps(reply, ensure_ascii=False)


def pick(seed: str, n: int) -> int:
    """Deterministic index in range(n) from a string."""
    return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % n


def oeq_reply(job: Job) -> str:
    """Grounded open QA: each item asks about one sentence of the document and answers with it."""
    sents = sentences(job.document.text)
    kind = KINDS.get(job.document.kind, "document")
    items = []
    for n in range(job.count):
        i = (pick(job.document.id + job.task_type, len(sents)) + n) % len(sents)
        cue = " ".join(sents[i].split()[:6]).rstrip(".,;:")
        question = QUESTIONS[job.task_type].format(kind=kind, cue=cue, n=n + 1)
        if job.task_type == "clinical_note_summarization":
            answer = " ".join(dict.fromkeys([sents[0], sents[i], sents[-1]]))
        else:
            answer = f"D'après le document : {sents[i]}"
        items.append({"question": question, "answer": answer})
    return json.dumps({"items": items}, ensure_ascii=False)


def mcq_reply(job: Job, pool: Sequence[str]) -> str:
    """Grounded MCQs: true options are sentences of the document, distractors come from others."""
    own = sentences(job.document.text)
    foreign = list(dict.fromkeys(s for s in pool if s not in job.document.text))
    if len(foreign) < 4:
        raise ValueError(f"{job.document.id}: fewer than 4 distractor sentences in other documents")
    items = []
    for n in range(job.count):
        n_true = 1 if n % 2 == 0 or len(own) < 2 else 2
        start = pick(f"{job.document.id}:mcq:{n}", len(own))
        true = [own[(start + k) % len(own)] for k in range(n_true)]
        offset = pick(f"{job.document.id}:distractors:{n}", len(foreign))
        distractors = (foreign[offset:] + foreign[:offset])[: 5 - n_true]
        texts = sorted(true + distractors, key=lambda s: pick(f"{n}:{s}", 1 << 30))
        letters = "ABCDE"
        options = [{"letter": letters[k], "text": t} for k, t in enumerate(texts)]
        answers = [letters[texts.index(t)] for t in true]
        which = "laquelle est rapportée" if n_true == 1 else "lesquelles sont rapportées"
        question = f"Parmi les propositions suivantes, {which} dans ce document ?"
        items.append({"question": question, "options": options, "answers": sorted(answers)})
    return json.dumps({"items": items}, ensure_ascii=False)


def synthesis_entries(
    jobs: Iterable[Job], pool: Sequence[str], base_url: str
) -> list[dict[str, Any]]:
    """Replay entries for synthesis jobs."""
    entries = []
    for job in jobs:
        text = mcq_reply(job, pool) if job.task_type == "mcq" else oeq_reply(job)
        entries.append(entry(base_url, job.request, text))
    return entries


def entry(base_url: str, request: ChatRequest, text: str) -> dict[str, Any]:
    """A marked replay line for an authored reply."""
    key = request_key(base_url, request.body())
    return recording_entry(base_url, request, completion_body(request.model, text, key), NOTE)


def prepare_inputs(config: dict[str, Any], root: Path, work: Path) -> tuple[dict, dict]:
    """English records and corpus documents per source, built by the data stage's functions."""
    records: dict[str, list[Record]] = {}
    documents: dict[str, list[Document]] = {}
    dataset = DatasetSettings.from_dict(config["dataset"], "dataset")
    for source, spec in config["sources"].items():
        if spec["role"] not in ("translate", "synthesize"):
            continue
        location = dict(spec["location"])
        if location.get("kind") == "local":
            location["path"] = str(root / location["path"])
        raw = work / source / "raw"
        stage_source(
            source, LocationSettings.from_dict(location), raw, work / source / "manifest.json"
        )
        if spec["role"] == "synthesize":
            normalize_corpus(source, spec["adapter"], raw, work / source / "documents.parquet")
            documents[source] = read_documents(work / source / "documents.parquet")
            continue
        out = work / source / "records.parquet"
        normalize_source(
            source,
            spec["adapter"],
            "translate",
            raw,
            out,
            work / source / "q.jsonl",
            work / source / "stats.json",
            dataset,
        )
        records[source] = read_records(out)
    return records, documents


def quality_entries(config: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """Replay entries for the translation-quality segments (authored imperfect translations)."""
    quality = config["translation"].get("quality") or {}
    if not quality.get("enabled"):
        return []
    tr = config["translation"]
    base_url = config["llm"]["endpoints"][tr["endpoint"]]["base_url"]
    test_file = root / quality["test_file"]
    authored_path = test_file.with_name("parallel_authored_mt.jsonl")
    authored = {
        row["id"]: row["mt"]
        for row in map(json.loads, authored_path.read_text(encoding="utf-8").splitlines())
    }
    entries = []
    for segment in read_parallel(test_file):
        if segment["id"] not in authored:
            raise KeyError(f"{authored_path}: no authored translation for {segment['id']}")
        request = payload_request({"text": segment["en"]}, tr["model"], tr["temperature"],
                                  tr["max_tokens"])  # fmt: skip
        reply = json.dumps({"text": authored[segment["id"]]}, ensure_ascii=False)
        entries.append(entry(base_url, request, reply))
    return entries


def build_recording(
    config: dict[str, Any], pairs: Mapping[str, str], root: Path, work: Path
) -> list[dict]:
    """Every replay entry of the demo (translation, then synthesis), de-duplicated by key."""
    records, documents = prepare_inputs(config, root, work)
    tr, sy = config["translation"], config["synthesis"]
    base_url = config["llm"]["endpoints"][tr["endpoint"]]["base_url"]
    missing: set[str] = set()
    entries = []
    for source_records in records.values():
        for record in source_records:
            request = translation_request(record, tr["model"], tr["temperature"], tr["max_tokens"])
            entries.append(entry(base_url, request, translation_reply(record, pairs, missing)))
    if missing:
        listed = "\n  ".join(sorted(missing)[:10])
        raise ValueError(
            f"{len(missing)} English strings have no authored French pair, e.g.:\n  {listed}\n"
            "add them to the fact bank / tools/make_demo_fixtures.py and rerun both tools"
        )
    base_url = config["llm"]["endpoints"][sy["endpoint"]]["base_url"]
    pool = [s for docs in documents.values() for d in docs for s in sentences(d.text)]
    for docs in documents.values():
        jobs = plan_jobs(
            docs,
            sy["task_types"],
            sy["mcq_per_document"],
            sy["model"],
            sy["temperature"],
            sy["max_tokens"],
            config["study"]["seed"],
        )
        entries.extend(synthesis_entries(jobs, pool, base_url))
    entries.extend(quality_entries(config, root))
    unique = {e["key"]: e for e in entries}
    print(
        f"translation: {sum(len(r) for r in records.values())} records of {sorted(records)}; "
        f"synthesis: {sum(len(d) for d in documents.values())} documents of {sorted(documents)}; "
        f"{len(unique)} distinct requests recorded"
    )
    return list(unique.values())


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--config", type=Path, help="default: ROOT/config/demo.yaml")
    parser.add_argument("--out", type=Path, help="default: ROOT/" + RECORDING)
    parser.add_argument("--pairs", type=Path, help="default: ROOT/" + PAIRS)
    args = parser.parse_args(argv)
    config_path = args.config or args.root / "config" / "demo.yaml"
    out = args.out or args.root / RECORDING
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    pairs = load_pairs(args.pairs or args.root / PAIRS)
    with tempfile.TemporaryDirectory(prefix="record_demo_llm_") as work:
        entries = build_recording(config, pairs, args.root, Path(work))
    write_recording(entries, out)
    print(f"wrote {len(entries)} authored replay entries to {out}")


if __name__ == "__main__":
    main()
