"""The released-dataset entry point (data.build: published) and the published-count table."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from medinjection.config_checks import StudyConfigError, check_study_config
from medinjection.published import PUBLISHED_COUNTS, comparison_rows
from medinjection.sources import get_adapter
from medinjection.sources.base import Quarantined
from medinjection.sources.released import ReleasedFormatError, split_options
from tests.support.workflow import job_counts, make_workdir, snakemake

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "resources" / "demo" / "published"


def test_released_native_fixture_maps_to_records() -> None:
    items = list(get_adapter("released_native")(PUBLISHED / "native", "medinjection_native"))
    assert not [i for i in items if isinstance(i, Quarantined)]
    counts = Counter((r.split, r.task) for r in items)
    assert counts == {
        ("train", "mcq"): 40,
        ("train", "mcqu"): 40,
        ("train", "oeq"): 40,
        ("validation", "mcqu"): 8,
        ("validation", "oeq"): 8,
        ("test", "mcqu"): 8,
    }
    first = next(r for r in items if r.id == "medinjection_native:train/mcq/mcq_train/000000")
    assert first.options == (
        ("A", "filtration du sang"),
        ("B", "sécrétion d'insuline"),
        ("C", "échanges gazeux"),
        ("D", "pompe sanguine"),
    )
    assert first.answer == "A,C" and first.origin == "native" and first.language == "fr"
    assert first.question.endswith("Choix de réponses :") and "(A)" not in first.question


def test_released_item_with_unrecoverable_options_is_quarantined(tmp_path: Path) -> None:
    item = {
        "messages": [{"role": "user", "content": "Question ?\nA) un\nB) deux"}],
        "classes": ["A", "B", "C"],
        "answer": ["A"],
    }
    folder = tmp_path / "Test" / "mcqu"
    folder.mkdir(parents=True)
    (folder / "mcqu_test.json").write_text(json.dumps([item]))
    (result,) = get_adapter("released_translated")(tmp_path, "medinjection_translated")
    assert isinstance(result, Quarantined)
    assert result.reasons == ("option lines ['A', 'B'] do not match classes ['A', 'B', 'C']",)
    assert split_options("Q ?\n(A) x\nB. y\nC: z") == ("Q ?", (("A", "x"), ("B", "y"), ("C", "z")))


def test_comparison_rows_put_ours_beside_the_published_counts() -> None:
    rows = comparison_rows(
        [["native", "mediqal", "mcqu", "train", 10], ["native", "x", "mcq", "train", 5]]
    )
    native_train = rows[0]
    assert native_train[:5] == ["native", "train", 15, 57_563, 15 - 57_563]
    native_total = rows[3]
    assert native_total[:4] == ["native", "total", 15, 77_247]
    assert rows[-1][:4] == ["all", "total", 15, sum(PUBLISHED_COUNTS.values())]
    assert sum(PUBLISHED_COUNTS.values()) == 571_427  # the parts (the paper's 571,436 is 9 more)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("published"))


def test_published_build_skips_translation_and_synthesis(workdir: Path) -> None:
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    config["data"]["build"] = "published"
    # the fixture's release holds 40 translated and 40 synthetic train MCQs (38 expected after
    # dedup): the demo's size 60 fails the feasibility plan, see the test below
    config["mixtures"]["size"] = 36
    config["evaluation"]["test_sets"] = {
        "native-mcqu": {"origin": "native", "source": "medinjection_native", "task": "mcqu"},
        "translated-mcqu": {
            "origin": "translated",
            "source": "medinjection_translated",
            "task": "mcqu",
        },
    }
    (workdir / "config" / "published_demo.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(workdir, "-n", "--configfile", "config/published_demo.yaml")
    counts = job_counts(proc.stdout)
    assert counts["stage_published"] == 3 and counts["normalize_published"] == 3
    assert counts["build_dataset"] == 1 and counts["build_mixture"] == 7
    # nothing of the sources runs: the tiny base model's tokenizer is trained on the released
    # records (before, it asked for the sources' normalized texts, and the released-data study,
    # which has no sources, got an empty corpus)
    for rule in ("stage_source", "normalize_source", "normalize_corpus", "translate_shard",
                 "gather_translation", "synthesize"):  # fmt: skip
        assert rule not in counts


def _write(root: Path, rel: str, items: object) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, ensure_ascii=False))
    return path


def test_released_files_without_the_inferred_fields_stop_naming_file_and_field(
    tmp_path: Path,
) -> None:
    adapter = get_adapter("released_native")
    # the ALL-style flat fields instead of messages/classes/answer: not guessed at
    flat = [{"instruction": "Q ?", "context": "", "answer": "A", "type": "mcqu", "origin": "x"}]
    _write(tmp_path / "a", "Test/mcqu/mcqu_test.json", flat)
    with pytest.raises(ReleasedFormatError, match=r"mcqu_test\.json has the field 'messages'"):
        list(adapter(tmp_path / "a", "medinjection_native"))
    no_classes = [{"messages": [{"role": "user", "content": "Q ?\n(A) x\n(B) y"}], "answer": "A"}]
    _write(tmp_path / "b", "Train/mcq/mcq_train.json", no_classes)
    with pytest.raises(ReleasedFormatError, match=r"field 'classes' expected for mcq items"):
        list(adapter(tmp_path / "b", "medinjection_native"))
    path = tmp_path / "c" / "Train" / "oeq" / "oeq_train.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"messages": []}\n{"messages": []}\n')  # JSON Lines, not a JSON list
    with pytest.raises(ReleasedFormatError, match=r"oeq_train\.json is not one JSON document"):
        list(adapter(tmp_path / "c", "medinjection_native"))


def test_released_synthetic_training_files_map_to_train_records(tmp_path: Path) -> None:
    """Synthetic's files are Train/mcq/mcq_training.json and Train/oeq/oeq_training.json."""
    mcq = {
        "messages": [
            {"role": "system", "content": "Répondez par la ou les lettres."},
            {"role": "user", "content": "Quel organe ?\n(A) foie\n(B) rein\n(C) cœur"},
            {"role": "assistant", "content": "A, B"},
        ],
        "classes": ["A", "B", "C"],
        "answer": "A, B",
    }
    oeq = {"messages": [{"role": "user", "content": "Expliquez."},
                        {"role": "assistant", "content": "Parce que."}]}  # fmt: skip
    no_answer = {k: v for k, v in mcq.items() if k != "answer"}
    _write(tmp_path, "Train/mcq/mcq_training.json", [mcq, no_answer])
    _write(tmp_path, "Train/oeq/oeq_training.json", [oeq])
    items = list(get_adapter("released_synthetic")(tmp_path, "medinjection_synthetic"))
    records = [i for i in items if not isinstance(i, Quarantined)]
    assert [(r.id, r.task, r.split, r.answer) for r in records] == [
        ("medinjection_synthetic:train/mcq/mcq_training/000000", "mcq", "train", "A,B"),
        ("medinjection_synthetic:train/oeq/oeq_training/000000", "oeq", "train", "Parce que."),
    ]
    assert records[0].origin == "synthetic" and records[0].meta["system"].startswith("Répondez")
    (bad,) = [i for i in items if isinstance(i, Quarantined)]
    assert bad.reasons == ("no 'answer' field",)


def test_published_study_config_dry_runs_without_sources(workdir: Path) -> None:
    proc = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", "config/published.yaml")
    counts = job_counts(proc.stdout)
    assert counts["stage_published"] == 3 and counts["normalize_published"] == 3
    assert counts["build_mixture"] == 7 and counts["train"] == 7 and counts["predict"] == 8
    for rule in ("stage_source", "translate_shard", "synthesize", "translation_quality"):
        assert rule not in counts
    config = yaml.safe_load((ROOT / "config" / "published.yaml").read_text())
    study = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    # after the data, everything is the study's own
    for key in ("mixtures", "base_model", "training", "prediction", "judge", "metaeval"):
        assert config[key] == study[key], key
    assert config["dataset"]["deduplicate"] is False and config["sources"] == {}


def test_study_config_switched_to_published_points_to_the_published_config() -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["data"]["build"] = "published"
    with pytest.raises(StudyConfigError, match=r"config/published\.yaml is the study config"):
        check_study_config(config)
    check_study_config(yaml.safe_load((ROOT / "config" / "published.yaml").read_text()))
