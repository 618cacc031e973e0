"""Write the demo fixtures: raw files of the 14 demo sources in their own public formats.

Deterministic (seeded per source): running it twice gives byte-identical files. Text is authored
for the project (tools/demo_fact_bank.py: a small bilingual bank of textbook facts); English
items are composed in English and French at once, and resources/demo/llm/authored_translations
.jsonl gets {"en", "fr"} for every English string a translation request will contain (question,
context, option texts, PubMedQA long answer), checked by running the real adapters on the files.
A few deliberately bad raw records per source exercise the quarantine; a few planted duplicates
of test items exercise decontamination.

Usage: python tools/make_demo_fixtures.py [--root REPO_ROOT]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_corpora import CORPUS_WRITERS  # noqa: E402
from demo_english import ENGLISH_WRITERS  # noqa: E402
from demo_io import rng_for  # noqa: E402
from demo_native import NATIVE_WRITERS  # noqa: E402
from demo_text import Translations  # noqa: E402


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def main(argv: list[str] | None = None) -> None:
    """Regenerate every demo source folder and the authored translations."""
    parser = argparse.ArgumentParser(description="Write the demo source fixtures.")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    sources_dir = args.root / "resources" / "demo" / "sources"
    translations = Translations()
    for source, write in sorted(NATIVE_WRITERS.items()) + sorted(CORPUS_WRITERS.items()):
        write(_fresh(sources_dir / source), rng_for(source))
    for source, write_en in sorted(ENGLISH_WRITERS.items()):
        write_en(_fresh(sources_dir / source), rng_for(source), translations)
    for source in sorted([*NATIVE_WRITERS, *CORPUS_WRITERS, *ENGLISH_WRITERS]):
        files = [p for p in (sources_dir / source).rglob("*") if p.is_file()]
        print(f"{source}: {len(files)} files")
    out = args.root / "resources" / "demo" / "llm" / "authored_translations.jsonl"
    n = translations.write_checked(sources_dir, sorted(ENGLISH_WRITERS), out)
    print(f"authored translations: {n} strings -> {out}")


if __name__ == "__main__":
    main()
