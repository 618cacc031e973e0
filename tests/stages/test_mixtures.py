"""Mixtures: largest-remainder shares, seeded draws, byte-identical rebuilds, pool errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from medinjection.mixtures import allocate, draw_mixture
from medinjection.records import Record, write_records
from medinjection.settings import MixturesSettings
from medinjection.stages.mixtures import build_mixture
from tests.conftest import load_script

OPTIONS = (("A", "Oui"), ("B", "Non"), ("C", "Peut-être"))


def pool(origin: str, split: str, n_mcqu: int, n_mcq: int = 0, n_oeq: int = 0) -> list[Record]:
    records = []
    for task, n in (("mcqu", n_mcqu), ("mcq", n_mcq), ("oeq", n_oeq)):
        for i in range(n):
            records.append(
                Record(
                    id=f"{origin}_src:{split}-{task}-{i:03d}",
                    origin=origin,
                    source=f"{origin}_src",
                    task=task,
                    split=split,
                    question=f"Question {origin} {task} {i} ?",
                    answer={"mcqu": "B", "mcq": "A,C", "oeq": "Réponse."}[task],
                    options=None if task == "oeq" else OPTIONS,
                )
            )
    return records


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset"
    write_records(pool("native", "train", 30, 10, 5), root / "native" / "train.parquet")
    write_records(pool("native", "validation", 6, 2), root / "native" / "validation.parquet")
    write_records(pool("translated", "train", 40), root / "translated" / "train.parquet")
    write_records(pool("translated", "validation", 8), root / "translated" / "validation.parquet")
    write_records(pool("synthetic", "train", 30), root / "synthetic" / "train.parquet")
    write_records([], root / "synthetic" / "validation.parquet")
    return root


def files(root: Path, split: str) -> list[Path]:
    return [root / o / f"{split}.parquet" for o in ("native", "translated", "synthetic")]


def run(
    root: Path,
    out: Path,
    name: str,
    shares: dict,
    size: int = 20,
    vsize: int = 6,
    shared: list[str] | None = None,
) -> dict:
    mixtures = MixturesSettings.from_dict(
        {
            "size": size,
            "validation_size": vsize,
            "seed": 42,
            **({"validation_origins": shared} if shared else {}),
            "tasks": ["mcq", "mcqu"],
            "definitions": {name: shares},
        },
        "mixtures",
    )
    build_mixture(
        name,
        mixtures,
        "v1",
        files(root, "train"),
        files(root, "validation"),
        out / "train.jsonl",
        out / "validation.jsonl",
        out / "manifest.json",
    )
    return json.loads((out / "manifest.json").read_text())


def test_allocate_largest_remainder() -> None:
    assert allocate(60, {"native": 1, "synthetic": 1, "translated": 1}) == {
        "native": 20,
        "synthetic": 20,
        "translated": 20,
    }
    assert allocate(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert allocate(7, {"a": 2, "b": 1}) == {"a": 5, "b": 2}
    assert allocate(5, {"mcq": 10.0, "mcqu": 30.0}) == {"mcq": 1, "mcqu": 4}


def test_mixture_size_shares_and_rendering(dataset: Path, tmp_path: Path) -> None:
    manifest = run(dataset, tmp_path / "ALL", "ALL", {"native": 1, "translated": 1, "synthetic": 1})
    rows = [
        json.loads(line) for line in (tmp_path / "ALL" / "train.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    per_origin = {
        o: sum(n for s in c.values() for n in s.values()) for o, c in manifest["counts"].items()
    }
    assert per_origin == {"native": 7, "synthetic": 7, "translated": 6}
    assert manifest["counts"]["native"]["native_src"] == {"mcq": 2, "mcqu": 5}  # 7 over 10:30
    assert all(r["task"] != "oeq" for r in rows)
    mcq = next(r for r in rows if r["task"] == "mcq")
    assert [m["role"] for m in mcq["messages"]] == ["system", "user", "assistant"]
    assert mcq["messages"][2]["content"] == "A, C"
    assert manifest["validation_from_train"] == ["synthetic"]
    val_ids = {json.loads(x)["id"] for x in (tmp_path / "ALL" / "validation.jsonl").open()}
    assert len(val_ids) == 6 and not val_ids & {r["id"] for r in rows}


def test_mixture_rebuild_is_byte_identical(dataset: Path, tmp_path: Path) -> None:
    shares = {"native": 1, "translated": 1}
    first = run(dataset, tmp_path / "a", "NAT-TRAD", shares)
    second = run(dataset, tmp_path / "b", "NAT-TRAD", shares)
    for name in ("train.jsonl", "validation.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first["train_sha256"] == second["train_sha256"]
    other = run(dataset, tmp_path / "c", "OTHER", shares)
    assert other["train_sha256"] != first["train_sha256"]  # the name seeds the draw


def test_pool_too_small_names_counts(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"origin 'synthetic'.*needs 31 records but the pool has "
        r"30 \{'mcqu': 30\}",
    ):
        run(dataset, tmp_path / "syn", "SYN", {"synthetic": 1}, size=31)
    with pytest.raises(ValueError, match="unknown key mixtures.definitions.X.web"):
        run(dataset, tmp_path / "x", "X", {"web": 1})  # the settings refuse it first
    mixtures = MixturesSettings.from_dict(
        {"size": 2, "validation_size": 0, "seed": 1, "tasks": ["mcqu"], "definitions": {}}, "m"
    )
    with pytest.raises(ValueError, match="unknown origins"):
        draw_mixture("X", {"web": 1.0}, files(dataset, "train"), [], mixtures)


def test_shared_validation_is_one_set_and_leaves_train_pools_whole(
    dataset: Path, tmp_path: Path
) -> None:
    shared = ["native", "translated"]
    syn = run(dataset, tmp_path / "SYN", "SYN", {"synthetic": 1}, size=30, shared=shared)
    nat = run(dataset, tmp_path / "NAT", "NAT", {"native": 1}, size=12, shared=shared)
    # the synthetic pool (30 train-only mcqu) is used whole for training, none held out
    assert syn["counts"] == {"synthetic": {"synthetic_src": {"mcqu": 30}}}
    assert syn["validation_from_train"] == [] and syn["validation_shared_from"] == shared
    # 6 validation items, 3 per origin; native's 3 over its 6 mcqu : 2 mcq pool -> 2 mcqu, 1 mcq
    assert syn["validation_counts"] == {
        "native": {"native_src": {"mcq": 1, "mcqu": 2}},
        "translated": {"translated_src": {"mcqu": 3}},
    }
    assert syn["validation_sha256"] == nat["validation_sha256"]
    assert (tmp_path / "SYN" / "validation.jsonl").read_bytes() == (
        tmp_path / "NAT" / "validation.jsonl"
    ).read_bytes()
    with pytest.raises(
        ValueError, match=r"shared validation, origin 'native'.*needs 9 records but the pool has 8"
    ):
        run(dataset, tmp_path / "big", "SYN", {"synthetic": 1}, vsize=18, shared=shared)


def test_build_mixture_script(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "NAT"
    from medinjection.manifests import write_manifest

    built = dataset / "manifest.json"  # what build_dataset writes, and build_mixture checks
    write_manifest(
        built, "build_dataset", [*files(dataset, "train"), *files(dataset, "validation")]
    )
    load_script("build_mixture").main(
        SimpleNamespace(
            input=SimpleNamespace(
                train=files(dataset, "train")[:1],
                validation=files(dataset, "validation")[:1],
                manifest=str(built),
            ),
            output=SimpleNamespace(
                train=str(out / "train.jsonl"),
                validation=str(out / "validation.jsonl"),
                manifest=str(out / "manifest.json"),
            ),
            params=SimpleNamespace(
                name="NAT",
                mixtures={
                    "size": 12,
                    "validation_size": 4,
                    "seed": 42,
                    "tasks": ["mcq", "mcqu"],
                    "definitions": {"NAT": {"native": 1}},
                },
                prompt_version="v1",
            ),
            log=[str(tmp_path / "log.txt")],
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["size"] == 12 and manifest["counts"]["native"]["native_src"] == {
        "mcq": 3,
        "mcqu": 9,
    }
