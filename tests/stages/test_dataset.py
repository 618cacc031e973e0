"""The dataset rules: build_dataset's outputs, the test sets, the demo chain's pools."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from medinjection.records import read_records, write_records
from medinjection.settings import DatasetSettings, LocationSettings, TestSetSettings
from medinjection.stages.dataset import build_dataset, extract_test_sets
from medinjection.stages.sources import normalize_source, stage_source
from tests.conftest import load_script
from tests.support.records import DATASET, rec

ROOT = Path(__file__).resolve().parents[2]


def test_build_dataset_outputs(tmp_path: Path) -> None:
    write_records(
        [rec("n:1", "test"), rec("n:2", "train", "Autre question ?")], tmp_path / "n.parquet"
    )
    write_records(
        [rec("t:1", "train", "Quel traitement ?", origin="translated")], tmp_path / "t.parquet"
    )
    write_records(
        [rec("s:1", "train", "Question synthétique ?", origin="synthetic")], tmp_path / "s.parquet"
    )
    out = tmp_path / "dataset"
    build_dataset(
        [tmp_path / "n.parquet"], [tmp_path / "t.parquet"], [tmp_path / "s.parquet"], out, DATASET
    )
    assert [r.id for r in read_records(out / "native" / "train.parquet")] == ["n:2"]
    assert read_records(out / "synthetic" / "test.parquet") == []
    assert [r.id for r in read_records(out / "all.parquet")] == ["n:1", "n:2", "s:1"]
    rows = list(csv.DictReader(open(out / "removed.csv")))
    assert rows == [{"id": "t:1", "reason": "test_leak_exact", "matched_id": "n:1"}]
    stats = list(csv.reader(open(out / "stats.csv")))
    assert stats[0] == ["origin", "source", "task", "split", "n"]
    assert ["native", "n", "mcqu", "test", "1"] in stats
    with pytest.raises(ValueError, match="origin 'native'.*'translated' inputs"):
        build_dataset([], [tmp_path / "n.parquet"], [], tmp_path / "bad", DATASET)
    kept_all = tmp_path / "kept_all"
    build_dataset([tmp_path / "n.parquet"], [tmp_path / "t.parquet"], [tmp_path / "s.parquet"],
                  kept_all, replace(DATASET, deduplicate=False))  # fmt: skip
    assert [r.id for r in read_records(kept_all / "translated" / "train.parquet")] == ["t:1"]
    assert list(csv.reader(open(kept_all / "removed.csv"))) == [["id", "reason", "matched_id"]]


def test_extract_test_sets(tmp_path: Path) -> None:
    write_records(
        [rec("n:1", "test"), rec("n:2", "test", "Q2 ?", task="mcq", answer="A,B")],
        tmp_path / "native" / "test.parquet",
    )
    files = [tmp_path / "native" / "test.parquet"]
    sets = {"n-mcqu": TestSetSettings(origin="native", source="n", task="mcqu")}
    extract_test_sets(files, sets, tmp_path / "testsets")
    assert [r.id for r in read_records(tmp_path / "testsets" / "n-mcqu.parquet")] == ["n:1"]
    with pytest.raises(ValueError, match="test set 'n-oeq'.*is empty"):
        extract_test_sets(
            files,
            {"n-oeq": TestSetSettings(origin="native", source="n", task="oeq")},
            tmp_path / "testsets",
        )


def test_demo_chain_pools_are_large_enough(tmp_path: Path) -> None:
    """stage -> normalize -> dataset on the demo fixtures (English relabelled as translated)."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    settings = DatasetSettings.from_dict(config["dataset"], "dataset")
    groups: dict[str, list[Path]] = {"native": [], "translated": []}
    for source, spec in config["sources"].items():
        if spec["role"] == "synthesize":
            continue
        raw, out = tmp_path / "raw" / source, tmp_path / "norm" / source
        location = LocationSettings(kind="local", path=str(ROOT / spec["location"]["path"]))
        stage_source(source, location, raw, tmp_path / "raw" / f"{source}.json")
        normalize_source(
            source,
            spec["adapter"],
            spec["role"],
            raw,
            out / "records.parquet",
            out / "quarantine.jsonl",
            out / "stats.json",
            settings,
        )
        if spec["role"] == "native":
            groups["native"].append(out / "records.parquet")
        else:  # stand-in for translation, for this test only
            english = read_records(out / "records.parquet")
            write_records([replace(r, language="fr") for r in english], out / "fr.parquet")
            groups["translated"].append(out / "fr.parquet")
    dataset = tmp_path / "dataset"
    stats = sorted((tmp_path / "norm").glob("*/stats.json"))
    from medinjection.manifests import write_manifest

    produced = tmp_path / "norm" / "manifest.json"  # the producers' manifests, in one here
    write_manifest(produced, "normalize_source", [*groups["native"], *groups["translated"], *stats])
    load_script("build_dataset").main(
        SimpleNamespace(
            input=SimpleNamespace(
                native=groups["native"],
                translated=groups["translated"],
                synthetic=[],
                source_stats=stats,
                manifests=[str(produced)],
            ),
            output=SimpleNamespace(
                stats=str(dataset / "stats.csv"), manifest=str(dataset / "manifest.json")
            ),
            params=SimpleNamespace(dataset=config["dataset"]),
            log=[str(tmp_path / "log.txt")],
        )
    )
    removed = list(csv.DictReader(open(dataset / "removed.csv")))
    assert sorted(r["reason"] for r in removed) == [
        "test_leak_exact",
        "test_leak_exact",
        "test_leak_near",
    ]
    counts = Counter()
    for row in csv.DictReader(open(dataset / "stats.csv")):
        if row["split"] == "train" and row["task"] in {"mcq", "mcqu"}:
            counts[row["origin"]] += int(row["n"])
    assert counts == {"native": 90, "translated": 88}
    tests = [dataset / origin / "test.parquet" for origin in ("native", "translated")]
    testsets = tmp_path / "testsets"
    names = config["evaluation"]["test_sets"]
    load_script("test_sets").main(
        SimpleNamespace(
            input=SimpleNamespace(tests=tests, manifest=str(dataset / "manifest.json")),
            output=SimpleNamespace(
                testsets=[str(testsets / f"{n}.parquet") for n in names],
                manifest=str(testsets / "manifest.json"),
            ),
            params=SimpleNamespace(test_sets=names),
            log=[str(tmp_path / "log.txt")],
        )
    )
    sizes = {n: len(read_records(testsets / f"{n}.parquet")) for n in names}
    assert sizes == {
        "mediqal-mcqu": 6,
        "mediqal-mcq": 5,
        "mediqal-oeq": 6,
        "frenchmedmcqa-mcq": 4,
        "frbmedqa-mcqu": 6,
        "medqa-mcqu": 7,
        "pubmedqa-mcqu": 8,
        "medmcqa-mcqu": 8,
    }
