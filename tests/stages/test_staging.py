"""Staging from the Hub (mocked), archives, pinned revisions, offline mode, pre-run checks."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from medinjection.settings import LocationSettings
from medinjection.sources import pins
from medinjection.sources.fetch import is_commit_sha
from medinjection.stages.sources import stage_source

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """snapshot_download stand-in: a cache snapshot folder named by its commit, or a miss."""
    calls: list[dict] = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        if kwargs["local_files_only"]:
            raise FileNotFoundError("not in cache")
        snapshot = tmp_path / "hub" / "snapshots" / SHA
        (snapshot / "data").mkdir(parents=True, exist_ok=True)
        (snapshot / "data" / "train.parquet").write_bytes(b"abc")
        with zipfile.ZipFile(snapshot / "data.zip", "w") as bundle:
            bundle.writestr("corpus/train.json", "[]")
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    return calls


def test_stage_hf_records_the_resolved_commit_and_extracts(tmp_path: Path, fake_hub) -> None:
    location = {"kind": "hf", "repo": "org/ds", "revision": "main", "extract": True}
    stage_source("ds", LocationSettings.from_dict(location), tmp_path / "raw", tmp_path / "m.json")
    assert fake_hub == [
        {
            "repo_id": "org/ds",
            "revision": "main",
            "repo_type": "dataset",
            "allow_patterns": None,
            "local_files_only": False,
        }
    ]
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["resolved_revision"] == SHA
    assert manifest["extracted"] == ["data.zip"]
    assert sorted(manifest["files"]) == ["corpus/train.json", "data.zip", "data/train.parquet"]
    assert manifest["files"]["data/train.parquet"] == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    )


def test_stage_hf_offline_says_what_is_missing(tmp_path: Path, fake_hub) -> None:
    location = {"kind": "hf", "repo": "org/ds", "revision": SHA, "files": ["data/*"]}
    with pytest.raises(RuntimeError, match=r"org/ds@0123.*offline mode: it is not in the Hugging"):
        stage_source(
            "ds",
            LocationSettings.from_dict(location),
            tmp_path / "raw",
            tmp_path / "m.json",
            offline=True,
        )
    assert fake_hub[0]["local_files_only"] is True


def test_zip_member_outside_the_folder_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    with zipfile.ZipFile(source / "evil.zip", "w") as bundle:
        bundle.writestr("../escape.txt", "x")
    location = {"kind": "local", "path": str(source), "extract": True}
    with pytest.raises(ValueError, match="would unpack outside"):
        stage_source(
            "x", LocationSettings.from_dict(location), tmp_path / "raw", tmp_path / "m.json"
        )


def test_is_commit_sha() -> None:
    assert is_commit_sha(SHA) and is_commit_sha(SHA.upper())
    assert not is_commit_sha("main") and not is_commit_sha(SHA[:-1]) and not is_commit_sha("z" * 40)


def _study() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_study_refuses_unpinned_revisions_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _study()
    config["data"]["allow_unpinned"] = False
    loose = pins.unpinned(config)
    assert "sources.medical_cases_fr" in loose and "sources.deft2021" not in loose  # local: none
    assert "sources.mediqal" not in loose and "published.synthetic" not in loose  # data.build
    assert "sources.mmlu_pro" not in loose  # pinned to a commit in the study config
    problems = pins.source_problems(config, {})
    assert len(problems) == 1 and "unpinned Hub revisions: sources.diamed (main)" in problems[0]
    assert "tools/pin_sources.py" in problems[0]
    config["data"]["allow_unpinned"] = True
    assert pins.source_problems(config, {}) == []


def test_offline_lists_sources_neither_staged_nor_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pins, "_in_hub_cache", lambda location: location["repo"] == "cais/mmlu")
    config = _study()
    staged = tmp_path / config["results_dir"] / "resources/sources/mediqal"
    staged.mkdir(parents=True)
    (staged / "manifest.json").write_text("{}")
    config["data"]["allow_unpinned"] = True
    assert pins.source_problems(config, {}) == []  # online: nothing to say
    problems = pins.source_problems(config, {"HF_HUB_OFFLINE": "1"})
    missing = sorted(p.split(": ")[1].split(" ")[0] for p in problems)
    assert "sources.mediqal" not in missing and "sources.mmlu" not in missing
    assert "sources.medmcqa" in missing and "sources.deft2021" not in missing
    config["data"]["offline"] = True
    assert pins.source_problems(config, {}) == problems


def test_pin_config_text_and_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "a: {kind: hf, repo: org/a, revision: main, repo_type: dataset}\n"
        "b: {kind: hf, repo: org/ab, revision: main}\n"
    )
    pinned = pins.pin_config_text(text, {"org/a": SHA}, {"org/a": "main"})
    assert pinned == text.replace("org/a, revision: main", f"org/a, revision: {SHA}")
    with pytest.raises(ValueError, match="no `repo: org/c, revision: v1`"):
        pins.pin_config_text(text, {"org/c": SHA}, {"org/c": "v1"})

    class FakeApi:
        def repo_info(self, repo, revision, repo_type):
            assert (repo, revision, repo_type) == ("org/a", "main", "dataset")
            return SimpleNamespace(sha=SHA)

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert pins.resolve_revision("org/a", "main") == SHA


def test_self_hosted_translation_endpoint_checks() -> None:
    from medinjection.config_checks import (
        StudyConfigError,
        check_before_run,
        check_study_config,
    )

    config = _study()
    config["data"]["allow_unpinned"] = True
    config["llm"]["endpoints"]["local_vllm"] = {
        "base_url": "http://127.0.0.1:18800/v1", "api_key_env": "UNUSED_KEY",
        "max_concurrency": 64, "requests_per_minute": 100000, "tokens_per_minute": 10**9,
        "max_retries": 3, "timeout_s": 600,
        "serve": {"model_path": "/models/mistral", "served_model_name": "mistral-small"},
    }  # fmt: skip
    config["translation"]["endpoint"] = "local_vllm"
    with pytest.raises(StudyConfigError, match=r"translation.model 'gpt-4o-mini' differs"):
        check_study_config(config)
    config["translation"]["model"] = "mistral-small"
    check_study_config(config)
    with pytest.raises(StudyConfigError) as error:
        check_before_run(config, {})
    assert "OPENAI_API_KEY" in str(error.value) and "UNUSED_KEY" not in str(error.value)


def _pqal_item(question: str, decision: str) -> dict:
    return {"QUESTION": question, "CONTEXTS": ["Background.", "Results."], "LABELS": ["B", "R"],
            "MESHES": [], "YEAR": "2001", "LONG_ANSWER": "Long.",
            "final_decision": decision}  # fmt: skip


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """urlopen stand-in serving raw.githubusercontent.com files of pubmedqa/pubmedqa at SHA."""
    items = {str(100 + k): _pqal_item(f"Q{k}?", ("yes", "no", "maybe")[k % 3]) for k in range(6)}
    served = {
        f"https://raw.githubusercontent.com/pubmedqa/pubmedqa/{SHA}/data/ori_pqal.json":
            json.dumps(items).encode(),
        f"https://raw.githubusercontent.com/pubmedqa/pubmedqa/{SHA}/data/test_ground_truth.json":
            json.dumps({"101": "no", "104": "no"}).encode(),
    }  # fmt: skip

    class Response:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            return None

        def read(self) -> bytes:
            return self.body

    def fake_urlopen(url, timeout=None):
        if url not in served:
            raise OSError(f"404 {url}")
        return Response(served[url])

    monkeypatch.setattr("medinjection.sources.fetch.urllib.request.urlopen", fake_urlopen)
    return served


def test_pubmedqa_official_test_split_staged_from_github(tmp_path: Path, fake_github) -> None:
    import hashlib

    from medinjection.sources import get_adapter

    files = ["data/ori_pqal.json", "data/test_ground_truth.json"]
    digests = {f: hashlib.sha256(body).hexdigest() for f, body in
               zip(files, fake_github.values(), strict=True)}  # fmt: skip
    location = {"kind": "github", "repo": "pubmedqa/pubmedqa", "revision": SHA, "files": files,
                "checksums": digests}  # fmt: skip
    stage_source(
        "pubmedqa", LocationSettings.from_dict(location), tmp_path / "raw", tmp_path / "m.json"
    )
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["resolved_revision"] == SHA and sorted(manifest["files"]) == files
    records = {r.id: r for r in get_adapter("pubmedqa")(tmp_path / "raw", "pubmedqa")}
    test = sorted(rid for rid, r in records.items() if r.split == "test")
    assert test == ["pubmedqa:101", "pubmedqa:104"]  # exactly the official test PMIDs
    assert {records[rid].meta["split_rule"] for rid in test} == {"source"}
    assert {r.split for rid, r in records.items() if rid not in test} <= {"train", "validation"}
    with pytest.raises(ValueError, match=r"has sha256 .* \(sources.pubmedqa.location.checksums\)"):
        bad = {**location, "checksums": {files[0]: "0" * 64}}
        stage_source(
            "pubmedqa", LocationSettings.from_dict(bad), tmp_path / "raw2", tmp_path / "m2.json"
        )
    with pytest.raises(ValueError, match="not a 40-hex commit hash"):
        moving = {**location, "revision": "master"}
        stage_source(
            "pubmedqa", LocationSettings.from_dict(moving), tmp_path / "r3", tmp_path / "m3"
        )
    with pytest.raises(RuntimeError, match="GitHub download and data.offline"):
        stage_source(
            "pubmedqa",
            LocationSettings.from_dict(location),
            tmp_path / "r4",
            tmp_path / "m4",
            offline=True,
        )


def test_study_config_reads_pubmedqa_official_split() -> None:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for source in ("pubmedqa", "pubmedqa_oeq"):
        location = config["sources"][source]["location"]
        assert location["kind"] == "github" and is_commit_sha(location["revision"])
        assert "data/test_ground_truth.json" in location["files"]
        assert set(location["checksums"]) == set(location["files"])


def test_offline_stage_keeps_only_the_files_patterns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, the real snapshot_download returns the whole cached snapshot: stage filters it."""
    import huggingface_hub.constants

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from rehearsal_hub import write_repo

    tree = tmp_path / "tree"
    for rel in ("pqa_labeled/train-0.parquet", "pqa_artificial/train-0.parquet", "README.md"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(rel.encode())
    cache = tmp_path / "hub"
    write_repo(cache, "qiaojin/PubMedQA", "dataset", SHA, tree)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    location = {"kind": "hf", "repo": "qiaojin/PubMedQA", "revision": SHA,
                "repo_type": "dataset", "files": ["pqa_labeled/*"]}  # fmt: skip
    raw = tmp_path / "raw"
    stage_source(
        "pubmedqa",
        LocationSettings.from_dict(location),
        raw,
        tmp_path / "manifest.json",
        offline=True,
    )
    staged = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())
    assert staged == ["pqa_labeled/train-0.parquet"]
    assert (raw / staged[0]).read_bytes() == b"pqa_labeled/train-0.parquet"
