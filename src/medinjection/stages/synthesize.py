"""Rule of workflow/rules/synthesize.smk: generate synthetic French QA from one corpus of documents
through the LLM client (task types, requests and reply checks in medinjection.llm.synthesis)."""

from __future__ import annotations

import logging
from pathlib import Path

from medinjection.llm.client import open_client
from medinjection.llm.cost import usage_cost
from medinjection.llm.structured import Report, check_loss_rate
from medinjection.llm.synthesis import plan_jobs, run_jobs
from medinjection.manifests import write_manifest
from medinjection.records import write_records
from medinjection.sources.base import read_documents

log = logging.getLogger(__name__)


def synthesize(
    documents_path: Path,
    out_path: Path,
    usage_path: Path,
    source: str,
    endpoint: dict,
    model: str,
    temperature: float,
    max_tokens: int,
    task_types: dict[str, int],
    mcq_per_document: int,
    mode: str,
    replay_file: str | None,
    cache_path: str,
    seed: int,
    submit: str = "direct",
    batch: dict | None = None,
    price: dict | None = None,
    *,
    max_quarantine_rate: float,
    quarantine_path: Path,
    out_manifest: Path | None = None,
) -> None:
    """Generate synthetic QA records for one corpus; write records and a usage/quarantine report
    (the records recorded in `out_manifest`).

    The quarantined items are also written to `quarantine_path` (beside the job's log, outside
    its outputs, so they survive a failed job); losing more than `max_quarantine_rate` of the
    planned items stops the job.
    """
    documents = read_documents(documents_path)
    jobs = plan_jobs(documents, task_types, mcq_per_document, model, temperature, max_tokens, seed)
    log.info("synthesize: %s: %d documents, %d requests", source, len(documents), len(jobs))
    report = Report(stage="synthesize", model=model, extra={"source": source, "seed": seed})
    with open_client(endpoint, mode, replay_file, cache_path, submit, batch) as client:
        records = run_jobs(jobs, client, source, model, report)
        report.usage = client.usage.as_dict()
    report.extra["cost"] = usage_cost(report.usage, price, submit)
    by_task: dict[str, int] = {}
    for record in records:
        by_task[record.task] = by_task.get(record.task, 0) + 1
    report.counts.update(
        documents=len(documents), requests=len(jobs), records=len(records), **by_task
    )
    write_records(records, out_path)
    report.write(usage_path)
    if out_manifest is not None:
        write_manifest(out_manifest, "synthesize", [Path(out_path)])
    report.write_quarantine(quarantine_path)
    log.info(
        "synthesize: %s wrote %d records (%s), quarantined %d",
        source,
        len(records),
        by_task,
        len(report.quarantined),
    )
    planned = sum(job.count for job in jobs)
    check_loss_rate(
        f"synthesis of {source}",
        planned - len(records),
        planned,
        max_quarantine_rate,
        "synthesis.max_quarantine_rate",
        Path(quarantine_path),
    )
