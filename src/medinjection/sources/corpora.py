"""French corpora that feed synthetic generation: DEFT-2021, DIAMED, MORFITT.

- DEFT-2021 (clinical cases, data on request from the DEFT organisers): one UTF-8 `.txt` file per
  case, anywhere under the raw folder; the id is the file stem. No specialty label is read.
- DIAMED (Dr-BERT/DiaMED data.zip): the loader DrBenchmark/DiaMED's DiaMed.py reads JSON arrays
  `splits/{train,validation,test}.json` from that archive (which also holds the case figures), rows
  with identifier, title, clinical_case, topic, keywords, `domain` (a list; the loader renames
  it `domains`), icd-10, figures, ... When `splits/` is present only its JSON files are read
  (other JSON in the archive is not the case list); otherwise every `*.jsonl` / `*.json` (the
  demo's form). The text is clinical_case; the specialty is `domain` or `domains` ('|'-joined
  when a list). A case repeated across files is read once (first file in path order).
- MORFITT (qanastek/MORFITT): TSV files `train.tsv`, `dev.tsv`, `test.tsv` with identifier,
  abstract, specialities ('|'-joined labels, kept as is as the specialty).
Documents with an empty text are skipped with a warning naming them and their file and line.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from medinjection.sources.base import (
    Document,
    DocumentKind,
    clean,
    load_json_with_lines,
    read_json_lines,
    require_files,
)

LOG = logging.getLogger(__name__)


def load_deft2021(raw_dir: Path, source: str) -> Iterator[Document]:
    """Clinical-case documents from DEFT-2021 `.txt` files."""
    for path in require_files(raw_dir, "**/*.txt", source):
        text = path.read_text("utf-8")
        yield from _document(source, path.stem, "clinical_case", None, text, str(path))


def load_diamed(raw_dir: Path, source: str) -> Iterator[Document]:
    """Clinical-case documents from DIAMED rows."""
    for where, row in _diamed_rows(raw_dir, source):
        domains = row.get("domain", row.get("domains"))
        specialty = ("|".join(domains) or None) if isinstance(domains, list) else clean(domains)
        identifier, text = str(row.get("identifier")), row.get("clinical_case")
        yield from _document(source, identifier, "clinical_case", specialty, text, where)


def _diamed_rows(raw_dir: Path, source: str) -> Iterator[tuple[str, dict[str, Any]]]:
    files = require_files(raw_dir, "**/*.json*", source)
    splits = [p for p in files if p.parent.name == "splits" and p.suffix == ".json"]
    seen: set[str] = set()
    for path in splits or files:
        if path.suffix == ".jsonl":
            rows: Iterable[tuple[int, dict[str, Any]]] = read_json_lines(path)
        elif path.suffix == ".json":
            items, lines = load_json_with_lines(path)
            if not isinstance(items, list) or not isinstance(lines, list):
                raise ValueError(f"source {source!r}: {path} must hold a JSON array of cases")
            rows = zip(lines, items, strict=True)
        else:
            continue
        for line, row in rows:
            key = str(row.get("identifier"))
            if key in seen:
                LOG.warning("%s: case %s repeated in %s; kept its first copy", source, key, path)
                continue
            seen.add(key)
            yield f"{path}:{line}", row


def load_morfitt(raw_dir: Path, source: str) -> Iterator[Document]:
    """Abstract documents from MORFITT TSV files."""
    for path in require_files(raw_dir, "**/*.tsv", source):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            for row in reader:
                specialty, where = clean(row.get("specialities")), f"{path}:{reader.line_num}"
                abstract = row.get("abstract")
                yield from _document(
                    source, row["identifier"], "abstract", specialty, abstract, where
                )


def _document(
    source: str, raw_id: str, kind: DocumentKind, specialty: str | None, text: Any, where: str
) -> Iterator[Document]:
    body = clean(text)
    if body is None:
        LOG.warning("%s: document %s (%s) has an empty text; skipped", source, raw_id, where)
        return
    yield Document(
        id=f"{source}:{raw_id}", source=source, kind=kind, specialty=specialty, text=body
    )
