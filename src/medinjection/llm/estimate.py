"""Estimate the API cost of the whole study's translation and synthesis before sending anything.

`python -m medinjection.llm.estimate --configfile config/config.yaml [--root .] [--out x.json]`

Requests are built by the stages' own functions (translation_request, plan_jobs). Where the data
stage has already built a source (<results_dir>/normalized/<source>/records.parquet or
documents.parquet under --root) every real request is counted; otherwise config
llm.estimate.volumes gives the expected number of records/documents and their mean length, and one
representative request per kind supplies the fixed prompt overhead. Tokens are characters /
llm.estimate.chars_per_token: no tokenizer is downloaded (tiktoken fetches its encodings at run
time). Output tokens: the English payload x translation_output_ratio for translation, items x
output_tokens_per_item for synthesis. Corrective retries (a few percent) are not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from medinjection.config_checks import translation_route
from medinjection.llm.cost import price_for
from medinjection.llm.request import ChatRequest
from medinjection.llm.synthesis import plan_jobs
from medinjection.llm.translation import translation_payload, translation_request
from medinjection.records import Record, read_records
from medinjection.sources.base import Document, read_documents

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageEstimate:
    """Token and cost estimate of one source's translation or synthesis."""

    stage: str
    source: str
    model: str
    basis: str  # "records" (real inputs counted) or "volumes" (config assumptions)
    items: int
    requests: int
    input_tokens: int
    output_tokens: int
    direct_usd: float
    batch_usd: float


def request_chars(request: ChatRequest) -> int:
    """Characters of what a request sends: the messages and the response format schema."""
    sent = {"messages": list(request.messages), **request.params}
    return len(json.dumps(sent, ensure_ascii=False))


def payload_chars(record: Record) -> int:
    """Characters of a record's translated text (the reply is about as long, in French)."""
    return len(json.dumps(translation_payload(record), ensure_ascii=False))


def _dummy_record(chars: int) -> Record:
    options = tuple((letter, "x" * max(1, int(chars * 0.05))) for letter in "ABCD")
    return Record("estimate:0", "translated", "estimate", "mcqu", "train", "x" * int(chars * 0.8),
                  "A", options, language="en")  # fmt: skip


def translation_volume(
    config: Mapping[str, Any], source: str, root: Path
) -> tuple[str, int, int, int]:
    """(basis, records, input chars, payload chars) of one translate source."""
    tr = config["translation"]
    _, model = translation_route(tr, source)
    path = root / config["results_dir"] / "normalized" / source / "records.parquet"
    if path.is_file():
        records = read_records(path)
        requests = [translation_request(r, model, tr["temperature"], tr["max_tokens"])
                    for r in records]  # fmt: skip
        return ("records", len(records), sum(map(request_chars, requests)),
                sum(map(payload_chars, records)))  # fmt: skip
    volume = _volume(config, source)
    dummy = _dummy_record(volume["chars_per_item"])
    request = translation_request(dummy, model, tr["temperature"], tr["max_tokens"])
    overhead = request_chars(request) - payload_chars(dummy)
    n, chars = int(volume["items"]), float(volume["chars_per_item"])
    return "volumes", n, int(n * (overhead + chars)), int(n * chars)


def synthesis_volume(
    config: Mapping[str, Any], source: str, root: Path
) -> tuple[str, int, int, int, int, int]:
    """(basis, documents, requests, input chars, open items, MCQ items) of one corpus."""
    sy = config["synthesis"]
    path = root / config["results_dir"] / "normalized" / source / "documents.parquet"
    if path.is_file():
        documents, scale = read_documents(path), 1.0
    else:
        volume = _volume(config, source)
        text = "x" * int(volume["chars_per_item"])
        documents = [Document(f"{source}:estimate", source, "clinical_case", None, text)]
        scale = float(volume["items"])
    jobs = plan_jobs(documents, sy["task_types"], sy["mcq_per_document"], sy["model"],
                     sy["temperature"], sy["max_tokens"], config["study"]["seed"])  # fmt: skip
    chars = sum(request_chars(job.request) for job in jobs)
    oeq = sum(job.count for job in jobs if job.task_type != "mcq")
    mcq = sum(job.count for job in jobs if job.task_type == "mcq")
    basis = "records" if scale == 1.0 and path.is_file() else "volumes"
    n_docs = len(documents) if basis == "records" else int(scale)
    return (basis, n_docs, int(len(jobs) * scale), int(chars * scale), int(oeq * scale),
            int(mcq * scale))  # fmt: skip


def _volume(config: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    volumes = config["llm"]["estimate"]["volumes"]
    if source not in volumes:
        raise KeyError(
            f"source {source!r} is not built yet (no {config['results_dir']}/normalized/{source}/) "
            f"and has no llm.estimate.volumes entry (have: {sorted(volumes)}); add its expected "
            "items and mean characters per item, or build it first (snakemake the normalize rules)"
        )
    return volumes[source]


def _costed(stage: str, source: str, model: str, basis: str, items: int, requests: int,
            input_tokens: int, output_tokens: int,
            prices: Mapping[str, Any]) -> StageEstimate:  # fmt: skip
    price = price_for(prices, model)
    return StageEstimate(
        stage, source, model, basis, items, requests, input_tokens, output_tokens,
        round(price.cost(input_tokens, output_tokens, "direct"), 2),
        round(price.cost(input_tokens, output_tokens, "batch"), 2),
    )  # fmt: skip


def estimate_study(config: Mapping[str, Any], root: Path) -> list[StageEstimate]:
    """One estimate per translate source and per synthesize corpus of the config."""
    est = config["llm"]["estimate"]
    cpt, prices = float(est["chars_per_token"]), config["llm"]["prices"]
    rows = []
    for source, spec in config["sources"].items():
        if spec["role"] == "translate":
            basis, n, in_chars, out_chars = translation_volume(config, source, root)
            out_tokens = int(out_chars * float(est["translation_output_ratio"]) / cpt)
            model = translation_route(config["translation"], source)[1]
            rows.append(_costed("translation", source, model, basis,
                                n, n, int(in_chars / cpt), out_tokens, prices))  # fmt: skip
        elif spec["role"] == "synthesize":
            basis, docs, reqs, in_chars, oeq, mcq = synthesis_volume(config, source, root)
            per_item = est["output_tokens_per_item"]
            out_tokens = int(oeq * per_item["oeq"] + mcq * per_item["mcq"])
            rows.append(_costed("synthesis", source, config["synthesis"]["model"], basis,
                                docs, reqs, int(in_chars / cpt), out_tokens, prices))  # fmt: skip
    return rows


def render(rows: Sequence[StageEstimate]) -> str:
    """A Markdown table of the estimates with per-stage and study totals."""
    head = ("| stage | source | model | basis | items | requests | input Mtok | output Mtok "
            "| direct USD | batch USD |\n"
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    lines = [head]
    for r in rows:
        lines.append(f"| {r.stage} | {r.source} | {r.model} | {r.basis} | {r.items:,} | "
                     f"{r.requests:,} | {r.input_tokens / 1e6:.2f} | {r.output_tokens / 1e6:.2f}"
                     f" | {r.direct_usd:,.2f} | {r.batch_usd:,.2f} |")  # fmt: skip
    for stage in ("translation", "synthesis", None):
        part = [r for r in rows if stage is None or r.stage == stage]
        lines.append(
            f"| **{stage or 'study'} total** | | | | {sum(r.items for r in part):,} | "
            f"{sum(r.requests for r in part):,} | {sum(r.input_tokens for r in part) / 1e6:.2f} "
            f"| {sum(r.output_tokens for r in part) / 1e6:.2f} | "
            f"{sum(r.direct_usd for r in part):,.2f} | {sum(r.batch_usd for r in part):,.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the estimate table (and write JSON with --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="where the config's results_dir would be"
    )
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.configfile.read_text(encoding="utf-8"))
    rows = estimate_study(config, args.root)
    print(f"cost estimate for {args.configfile} ({config['llm']['estimate']['chars_per_token']} "
          "chars/token; see the module docstring for the assumptions)\n")  # fmt: skip
    print(render(rows))
    if args.out:
        args.out.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
