"""Rule of workflow/rules/synthesize.smk: generate synthetic French QA from one corpus of documents
through the LLM client (task types, requests and reply checks in medinjection.llm.synthesis)."""

from __future__ import annotations

import logging
from pathlib import Path

from medinjection.llm.client import open_client
from medinjection.llm.cost import usage_cost
from medinjection.llm.structured import Report, check_loss_rate
from medinjection.llm.synthesis import plan_jobs, run_jobs
from medinjection.manifests import check_inputs, write_manifest
from medinjection.records import write_records
from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings, SynthesisSettings
from medinjection.sources.base import read_documents

log = logging.getLogger(__name__)


def synthesize(
    documents_path: Path,
    out_path: Path,
    usage_path: Path,
    source: str,
    synthesis: SynthesisSettings,
    endpoint: EndpointSettings,
    *,
    mode: str,
    replay_file: str | None,
    cache_path: str,
    seed: int,
    quarantine_path: Path,
    batch: BatchSettings | None = None,
    price: PriceSettings | None = None,
    out_manifest: Path | None = None,
    input_manifests: list[Path] | None = None,
) -> None:
    """Generate synthetic QA records for one corpus; write records and a usage/quarantine report
    (the records recorded in `out_manifest`).

    `synthesis` gives the model, sampling, task types and loss limit, `endpoint` the server
    (llm.endpoints.<synthesis.endpoint>), `mode`/`replay_file`/`cache_path` the client (llm.*).
    The quarantined items are also written to `quarantine_path` (beside the job's log, outside
    its outputs, so they survive a failed job); losing more than
    `synthesis.max_quarantine_rate` of the planned items stops the job. With `input_manifests`
    (normalize_corpus's; the rule gives it) the documents are checked first.
    """
    if input_manifests is not None:
        check_inputs([Path(documents_path)], input_manifests, "synthesize")
    model, submit = synthesis.model, synthesis.submit
    task_types = synthesis.task_types.to_dict()
    documents = read_documents(documents_path)
    jobs = plan_jobs(
        documents,
        task_types,
        synthesis.mcq_per_document,
        model,
        synthesis.temperature,
        synthesis.max_tokens,
        seed,
    )
    log.info("synthesize: %s: %d documents, %d requests", source, len(documents), len(jobs))
    report = Report(stage="synthesize", model=model, extra={"source": source, "seed": seed})
    batch_dict = batch.to_dict() if batch is not None else None
    with open_client(
        endpoint.to_dict(), mode, replay_file, cache_path, submit, batch_dict
    ) as client:
        records = run_jobs(jobs, client, source, model, report)
        report.usage = client.usage.as_dict()
    report.extra["cost"] = usage_cost(report.usage, price.to_dict() if price else None, submit)
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
        synthesis.max_quarantine_rate,
        "synthesis.max_quarantine_rate",
        Path(quarantine_path),
    )
