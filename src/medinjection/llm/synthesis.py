"""Synthetic French QA generated from clinical cases and abstracts (8 task types + MCQs).

The study names six of its eight instructional task types (summarization, factual QA, differential
diagnosis, treatment plan, lab interpretation, patient instructions); the last two were cut off in
every public copy of the dataset card. We add `clinical_reasoning_explanation` (the step-by-step
link from findings to conclusion, the core of exam-style clinical cases and of what the judge
rewards in open answers) and `medication_safety` (interactions, contraindications, dosing and
monitoring: frequent in clinical cases and not covered by the six). Both are config keys, so a
later recovery of the originals is a config edit plus one entry in `TASK_TYPES`.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from medinjection.llm.client import ChatRequest, ChatResult, LLMClient
from medinjection.llm.structured import (
    Report,
    ask_with_one_retry,
    clean_text,
    json_schema_format,
    parse_reply,
    strict_object,
)
from medinjection.records import Record, join_letters, validation_errors
from medinjection.sources.base import Document

log = logging.getLogger(__name__)

TASK_TYPES: dict[str, str] = {
    "clinical_note_summarization": (
        "résumé de note clinique : demander un résumé des éléments cliniques essentiels du "
        "document ; la réponse est ce résumé, fidèle et concis"
    ),
    "factual_qa": (
        "question factuelle : une question précise sur un fait explicitement rapporté dans le "
        "document (antécédent, examen, valeur, résultat) ; la réponse est ce fait"
    ),
    "differential_diagnosis": (
        "diagnostic différentiel : quels diagnostics évoquer devant la présentation décrite et "
        "quels éléments du document orientent vers chacun ou l'écartent"
    ),
    "treatment_plan": (
        "plan de traitement : quelle prise en charge thérapeutique proposer, justifiée par les "
        "données du document"
    ),
    "lab_interpretation": (
        "interprétation des examens : interpréter les résultats biologiques ou paracliniques "
        "rapportés dans le document"
    ),
    "patient_instructions": (
        "consignes au patient : les explications et consignes à donner au patient ou à ses "
        "proches, en langage simple"
    ),
    "clinical_reasoning_explanation": (
        "explication du raisonnement clinique : expliquer étape par étape comment les données du "
        "document mènent à la conclusion diagnostique ou thérapeutique"
    ),
    "medication_safety": (
        "sécurité médicamenteuse : interactions, contre-indications, effets indésirables, "
        "adaptation des doses ou surveillance liés aux traitements du document"
    ),
}
KIND_LABELS: dict[str, str] = {"clinical_case": "cas clinique", "abstract": "résumé d'article"}
MCQ_LETTERS: tuple[str, ...] = ("A", "B", "C", "D", "E")

SYNTHESIS_SYSTEM = (
    "Vous êtes un médecin enseignant qui rédige en français des questions d'entraînement à partir "
    "de documents médicaux. Chaque question doit pouvoir être résolue à partir du document fourni, "
    "et chaque réponse doit être exacte et fondée sur lui. Répondez uniquement avec l'objet JSON "
    "demandé."
)


def check_task_types(task_types: Mapping[str, int]) -> None:
    """Unknown task types or negative counts raise, listing the valid task types."""
    unknown = sorted(set(task_types) - set(TASK_TYPES))
    if unknown:
        raise KeyError(f"synthesis.task_types: unknown {unknown}; valid: {sorted(TASK_TYPES)}")
    negative = {name: n for name, n in task_types.items() if n < 0}
    if negative:
        raise ValueError(f"synthesis.task_types: counts must be >= 0, got {negative}")


def _document_block(document: Document) -> str:
    kind = KIND_LABELS.get(document.kind, document.kind)
    return f"Document ({kind}) :\n{document.text.strip()}"


def _params(schema_name: str, schema: dict, temperature: float, max_tokens: int, seed: int) -> dict:
    return {
        "temperature": temperature,
        "max_tokens": max_tokens,
        "seed": seed,
        "response_format": json_schema_format(schema_name, schema),
    }


OEQ_SCHEMA = strict_object(
    {
        "items": {
            "type": "array",
            "items": strict_object({"question": {"type": "string"}, "answer": {"type": "string"}}),
        }
    }
)
MCQ_SCHEMA = strict_object(
    {
        "items": {
            "type": "array",
            "items": strict_object(
                {
                    "question": {"type": "string"},
                    "options": {
                        "type": "array",
                        "items": strict_object(
                            {
                                "letter": {"type": "string", "enum": list(MCQ_LETTERS)},
                                "text": {"type": "string"},
                            }
                        ),
                    },
                    "answers": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(MCQ_LETTERS)},
                    },
                }
            ),
        }
    }
)


def oeq_request(
    document: Document,
    task_type: str,
    count: int,
    model: str,
    temperature: float,
    max_tokens: int,
    seed: int,
) -> ChatRequest:
    """The request for `count` open question/answer pairs of one task type on one document."""
    user = (
        f"Tâche : {TASK_TYPES[task_type]}.\n"
        f"Rédigez exactement {count} paire(s) question/réponse de ce type, en français, dans "
        '{"items": [{"question": ..., "answer": ...}]}. La question ne doit pas recopier le '
        "document ; celui-ci sera fourni avec elle.\n\n" + _document_block(document)
    )
    messages = ({"role": "system", "content": SYNTHESIS_SYSTEM}, {"role": "user", "content": user})
    return ChatRequest(
        model, messages, _params("open_qa", OEQ_SCHEMA, temperature, max_tokens, seed)
    )


def mcq_request(
    document: Document, count: int, model: str, temperature: float, max_tokens: int, seed: int
) -> ChatRequest:
    """The request for `count` multiple-choice questions (A-E, one or more answers)."""
    user = (
        f"Rédigez exactement {count} question(s) à choix multiples en français fondées sur le "
        "document, chacune avec cinq propositions lettrées A à E, plausibles, dont une ou "
        'plusieurs sont exactes. Donnez dans "answers" les lettres de toutes les propositions '
        "exactes. Évitez « toutes les réponses ci-dessus ».\n\n" + _document_block(document)
    )
    messages = ({"role": "system", "content": SYNTHESIS_SYSTEM}, {"role": "user", "content": user})
    return ChatRequest(model, messages, _params("mcq", MCQ_SCHEMA, temperature, max_tokens, seed))


@dataclass(frozen=True)
class Job:
    """One generation request and what it is for: (document, task type or 'mcq', count)."""

    document: Document
    task_type: str
    count: int
    request: ChatRequest


def plan_jobs(
    documents: Sequence[Document],
    task_types: Mapping[str, int],
    mcq_per_document: int,
    model: str,
    temperature: float,
    max_tokens: int,
    seed: int,
) -> list[Job]:
    """Every request a synthesis run makes, in a fixed order (also used by the demo recorder)."""
    check_task_types(task_types)
    jobs = []
    for doc in documents:
        for task_type, count in task_types.items():
            if count > 0:
                request = oeq_request(doc, task_type, count, model, temperature, max_tokens, seed)
                jobs.append(Job(doc, task_type, count, request))
        if mcq_per_document > 0:
            request = mcq_request(doc, mcq_per_document, model, temperature, max_tokens, seed)
            jobs.append(Job(doc, "mcq", mcq_per_document, request))
    return jobs


def item_id(source: str, document: Document, task_type: str, n: int) -> str:
    """Record id '<source>:<doc id>:<task_type>:<n>' (a doc id's '<source>:' is not doubled)."""
    doc_id = document.id.removeprefix(f"{source}:")
    return f"{source}:{doc_id}:{task_type}:{n}"


def _oeq_record(job: Job, item: Any, record_id: str, source: str, model: str) -> Record:
    item = item if isinstance(item, dict) else {}
    return Record(
        id=record_id,
        origin="synthetic",
        source=source,
        task="oeq",
        split="train",
        question=clean_text(item.get("question")) or "",
        answer=clean_text(item.get("answer")) or "",
        context=clean_text(job.document.text),
        specialty=job.document.specialty,
        language="fr",
        meta={"task_type": job.task_type, "document_id": job.document.id, "generator": model},
    )


def _mcq_record(job: Job, item: Any, record_id: str, source: str, model: str) -> Record:
    item = item if isinstance(item, dict) else {}
    raw_options = item.get("options") if isinstance(item.get("options"), list) else []
    options = tuple(
        (str(o.get("letter", "")).strip().upper(), clean_text(o.get("text")) or "")
        for o in raw_options
        if isinstance(o, dict)
    )
    answers = item.get("answers") if isinstance(item.get("answers"), list) else []
    answer = join_letters(str(a) for a in answers)
    return Record(
        id=record_id,
        origin="synthetic",
        source=source,
        task="mcqu" if len(answer.split(",")) == 1 else "mcq",
        split="train",
        question=clean_text(item.get("question")) or "",
        answer=answer,
        options=options,
        context=clean_text(job.document.text),
        specialty=job.document.specialty,
        language="fr",
        meta={"task_type": "mcq", "document_id": job.document.id, "generator": model},
    )


def mcq_structure_errors(record: Record) -> list[str]:
    """Synthetic-MCQ rules beyond the record schema: 4-5 options lettered A-D or A-E in order."""
    letters = record.option_letters()
    if len(letters) not in (4, 5):
        return [f"{len(letters)} options, expected 4 or 5"]
    if letters != MCQ_LETTERS[: len(letters)]:
        return [f"option letters {list(letters)} are not {list(MCQ_LETTERS[: len(letters)])}"]
    return []


def job_records(
    job: Job, reply: dict[str, Any], source: str, model: str, report: Report
) -> list[Record]:
    """Valid records of one parsed reply; invalid or missing items are quarantined with reasons."""
    items = reply.get("items")
    if not isinstance(items, list):
        items = []
    if len(items) > job.count:
        report.counts["extra_items_ignored"] = (
            report.counts.get("extra_items_ignored", 0) + len(items) - job.count
        )
    records = []
    for n in range(job.count):
        record_id = item_id(source, job.document, job.task_type, n)
        if n >= len(items):
            report.quarantine(record_id, [f"reply holds {len(items)} of {job.count} items"])
            continue
        build = _mcq_record if job.task_type == "mcq" else _oeq_record
        record = build(job, items[n], record_id, source, model)
        errors = validation_errors(record)
        if job.task_type == "mcq":
            errors += mcq_structure_errors(record)
        if errors:
            report.quarantine(record_id, errors, item=items[n])
        else:
            records.append(record)
    return records


_NON_WORD = re.compile(r"[^\w]+")
_COMBINING = unicodedata.combining


def _fold(text: str | None) -> str:
    """Accent-, case- and punctuation-insensitive form of a text."""
    text = unicodedata.normalize("NFKD", text or "")
    if not text.isascii():  # ASCII holds no combining mark
        text = "".join([c for c in text if not _COMBINING(c)])
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def question_key(record: Record, folded: dict[str, str] | None = None) -> str:
    """Dedup key: accent/case/punctuation-insensitive question, its options and document text.

    `folded` memoizes the document texts' folded forms (every item of a document shares one).
    """
    context = record.context or ""
    if folded is None:
        folded_context = _fold(context)
    elif (cached := folded.get(context)) is not None:
        folded_context = cached
    else:
        folded_context = folded[context] = _fold(context)
    options = [_fold(text) for _, text in record.options or ()]
    return json.dumps([folded_context, _fold(record.question), options], ensure_ascii=False)


def deduplicate(records: Sequence[Record], report: Report) -> list[Record]:
    """Drop repeated questions (same document, same options) as quarantined duplicates."""
    first: dict[str, str] = {}
    folded: dict[str, str] = {}
    kept = []
    for record in records:
        key = question_key(record, folded)
        if key in first:
            report.quarantine(record.id, [f"duplicate question of {first[key]}"])
            continue
        first[key] = record.id
        kept.append(record)
    return kept


def reply_check(job: Job, source: str, model: str, result: ChatResult) -> list[str]:
    """Why a reply is unusable: unparsable, or none of its items makes a valid record.

    The client caches only replies with no reason; a reply with some valid items is usable (its
    invalid items are quarantined one by one).
    """
    reply, errors = parse_reply(result)
    if reply is None:
        return errors
    scratch = Report(stage="check", model=model)
    if job_records(job, reply, source, model, scratch):
        return []
    reasons = sorted({reason for item in scratch.quarantined for reason in item["reasons"]})
    return [f"no valid item in the reply: {'; '.join(reasons)}"]


def run_jobs(
    jobs: Sequence[Job], client: LLMClient, source: str, model: str, report: Report
) -> list[Record]:
    """Send every job, retry unparsable replies once with feedback, build and dedup records."""
    checks = [partial(reply_check, job, source, model) for job in jobs]
    requests = [job.request for job in jobs]
    _, parsed, retry = ask_with_one_retry(
        client, requests, checks, lambda i, result: parse_reply(result), "synthesize"
    )
    report.counts["retried"] = len(retry)
    records: list[Record] = []
    for job, (reply, errors) in zip(jobs, parsed, strict=True):
        if reply is None:
            prefix = item_id(source, job.document, job.task_type, 0).rsplit(":", 1)[0]
            report.quarantine(f"{prefix}:*", errors, items_lost=job.count)
            continue
        records.extend(job_records(job, reply, source, model, report))
    return deduplicate(records, report)
