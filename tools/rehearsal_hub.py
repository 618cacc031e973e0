"""Build the rehearsal data: a local Hugging Face cache of every Hub source, and local sources.

For every `kind: hf` location of the study config (sources.* and, for a published-data config,
data.published.*), the repository's whole file tree at the pinned revision is generated
(tools/rehearsal_sources.py: real folder and file names, formats, schemas, published row counts
times --scale, with duplicates, test items in training pools and malformed rows baked in) and
written in the layout huggingface_hub itself writes:

    <cache>/datasets--<owner>--<name>/blobs/<git-sha1 or sha256 (LFS files)>
    <cache>/datasets--<owner>--<name>/snapshots/<commit>/<path>  -> ../../blobs/<hash>
    <cache>/datasets--<owner>--<name>/refs/main                  (the commit)
    <cache>/datasets--<owner>--<name>/trees/<commit>.json        (the tree listing, as
                                                                   snapshot_download >= 2.x keeps)

so that the stage rule's real `snapshot_download(..., local_files_only=True)` with
HF_HUB_OFFLINE=1 resolves it exactly as on a cluster node whose cache was filled online. A
revision that is a branch ("main": three study sources are not pinned yet) gets a generated
commit, printed and written to <workdir>/rehearsal_pins.json; the rehearsal overlay pins it
(pinning is the step that needs the network: tools/pin_sources.py).

The local sources are written where the study config points (its relative `path`s, resolved
against the rehearsal's work directory): MedQA's release files, DEFT-2021 cases, the S-Editions
export, the WMT24 test file; and the physician annotations (a URL in the study config).

Usage: python tools/rehearsal_hub.py --config config/config.yaml --workdir build/rehearsal
       [--scale 1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rehearsal_sources as gen  # noqa: E402

LFS_SUFFIXES = (".parquet", ".zip", ".json", ".jsonl", ".tsv")
CACHE = "hf/hub"  # under the work directory; HF_HUB_CACHE points here
ANNOTATIONS = "resources/local/metaeval/comparison_Qwen_4B_sft.json"
# GitHub sources (kind github) are downloads a cluster stages once online; the rehearsal writes
# their files here and its runtime overlay makes them local locations (tools/rehearsal.py)
GITHUB_DIR = "resources/local/github"
GITHUB_BUILDERS = {"pubmedqa/pubmedqa": "build_pubmedqa_github"}


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file (the Hub's blob id of a non-LFS file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324


def fake_commit(repo: str, revision: str) -> str:
    """A stable 40-hex commit for a branch revision of the rehearsal cache."""
    return hashlib.sha1(f"rehearsal:{repo}@{revision}".encode()).hexdigest()  # noqa: S324


def write_repo(cache: Path, repo: str, repo_type: str, commit: str, tree: Path) -> int:
    """Move a generated file tree into the cache as huggingface_hub lays it out; files written."""
    storage = cache / f"{repo_type}s--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    if snapshot.exists():
        shutil.rmtree(snapshot)
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        rel = path.relative_to(tree).as_posix()
        data = path.read_bytes()
        lfs = path.suffix in LFS_SUFFIXES
        sha256 = hashlib.sha256(data).hexdigest()
        blob_name = sha256 if lfs else git_blob_sha1(data)
        blob = storage / "blobs" / blob_name
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            os.replace(path, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
        entry: dict[str, Any] = {"size": len(data), "blob_id": git_blob_sha1(data)}
        if lfs:
            entry |= {"lfs_sha256": sha256, "lfs_size": len(data)}
        entries[rel] = entry
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    _write_tree_listing(storage, commit, entries)
    return len(entries)


def _write_tree_listing(storage: Path, commit: str, entries: dict[str, dict[str, Any]]) -> None:
    """trees/<commit>.json through huggingface_hub's own writer (the format it reads back)."""
    try:
        from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache
    except ImportError:  # an older huggingface_hub keeps no tree listing: nothing to write
        print("huggingface_hub has no tree cache: trees/ not written", file=sys.stderr)
        return
    write_tree_cache(
        str(storage), commit, {k: TreeCacheEntry.from_json(v) for k, v in entries.items()}
    )


def hub_builders(
    scale: float,
) -> tuple[dict[str, Callable[[Path], dict[str, int]]], dict[str, Any]]:
    """Repository id -> function writing its generated file tree into a folder; shared state."""
    shared: list[dict[str, Any]] = []  # FrenchMedMCQA items that reappear in medical-mqca-fr
    state: dict[str, Any] = {}

    def mmlu(root: Path) -> dict[str, int]:
        counts, state["mmlu_test"] = gen.build_mmlu(root, scale)
        return counts

    def mmlu_pro(root: Path) -> dict[str, int]:
        if "mmlu_test" not in state:
            mmlu(Path(tempfile.mkdtemp()))
        return gen.build_mmlu_pro(root, scale, state["mmlu_test"])

    return {
        "ANR-MALADES/MediQAl": lambda root: gen.build_mediqal(root, scale),
        "DrBenchmark/FrenchMedMCQA": lambda root: gen.build_frenchmedmcqa(root, scale, shared),
        "kadzaki/FrBMedQA": lambda root: gen.build_frbmedqa(root, scale),
        "mlabonne/medical-cases-fr": lambda root: gen.build_mlabonne(root, scale, "cases", []),
        "mlabonne/medical-mqca-fr": lambda root: gen.build_mlabonne(root, scale, "mqca", shared),
        "qiaojin/PubMedQA": lambda root: gen.build_pubmedqa(root, scale),
        "openlifescienceai/medmcqa": lambda root: gen.build_medmcqa(
            root, scale, state.get("medqa_test", [])
        ),
        "TsinghuaC3I/MedXpertQA": lambda root: gen.build_medxpertqa(root, scale),
        "cais/mmlu": mmlu,
        "TIGER-Lab/MMLU-Pro": mmlu_pro,
        "Dr-BERT/DiaMED": lambda root: gen.build_diamed(root, scale),
        "qanastek/MORFITT": lambda root: gen.build_morfitt(root, scale),
    } | {
        repo: (lambda root, origin=origin: gen.build_released(root, scale, origin))
        for repo, origin in gen.RELEASED_REPOS.items()
    }, state


def hub_locations(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """repo -> location of every Hub location in the config (sources and published data)."""
    found: dict[str, dict[str, Any]] = {}
    for spec in config.get("sources", {}).values():
        if spec["location"]["kind"] == "hf":
            found.setdefault(spec["location"]["repo"], spec["location"])
    for location in config.get("data", {}).get("published", {}).values():
        if location.get("kind") == "hf" and config["data"].get("build") == "published":
            found.setdefault(location["repo"], location)
    return found


def build(config_path: Path, workdir: Path, scale: float) -> dict[str, Any]:
    """Write the cache and the local sources; a summary (counts, pins, seconds) as a dict."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    cache = workdir / CACHE
    builders, state = hub_builders(scale)
    summary: dict[str, Any] = {"scale": scale, "repos": {}, "local": {}, "pins": {}}
    start = time.time()
    medqa_spec = config.get("sources", {}).get("medqa")
    if medqa_spec and medqa_spec["location"]["kind"] == "local":
        medqa = workdir / medqa_spec["location"]["path"]
        if medqa.exists():
            shutil.rmtree(medqa)
        summary["local"]["medqa"], state["medqa_test"] = gen.build_medqa(medqa, scale)
    for repo, location in sorted(hub_locations(config).items(), key=_order):
        if repo not in builders:
            raise KeyError(
                f"{config_path}: no rehearsal generator for Hub repository {repo!r}; "
                f"known: {sorted(builders)} (add one to tools/rehearsal_sources.py)"
            )
        revision = str(location["revision"])
        commit = revision if _is_commit(revision) else fake_commit(repo, revision)
        if commit != revision:
            summary["pins"][repo] = {"revision": revision, "commit": commit}
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            counts = builders[repo](Path(tmp))
            files = write_repo(cache, repo, location.get("repo_type", "dataset"), commit, Path(tmp))
        summary["repos"][repo] = {"commit": commit, "files": files, "rows": counts}
        print(f"{repo}@{commit[:10]}: {files} files, {counts}", flush=True)
    _local_sources(config, workdir, scale, summary)
    summary["seconds"] = round(time.time() - start, 1)
    (workdir / "rehearsal_pins.json").write_text(json.dumps(summary["pins"], indent=2) + "\n")
    (workdir / "rehearsal_data.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _order(item: tuple[str, Any]) -> tuple[int, str]:
    # MMLU before MMLU-Pro (which reuses MMLU items), MedQA's test (built first) feeds MedMCQA
    return (1 if item[0] == "TIGER-Lab/MMLU-Pro" else 0, item[0])


def _is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision.lower())


def _local_sources(config: dict[str, Any], workdir: Path, scale: float, summary: dict) -> None:
    local = {"deft2021": gen.build_deft2021, "s_editions": gen.build_s_editions}
    for name, spec in config.get("sources", {}).items():
        location = spec["location"]
        if location["kind"] == "github":
            if location["repo"] not in GITHUB_BUILDERS:
                raise KeyError(f"sources.{name}: no rehearsal generator for {location['repo']!r}")
            root = workdir / GITHUB_DIR / name
            shutil.rmtree(root, ignore_errors=True)
            build = getattr(gen, GITHUB_BUILDERS[location["repo"]])
            summary["local"][name] = build(root, scale)
            continue
        if location["kind"] != "local" or name == "medqa":
            continue
        if spec["adapter"] not in local:
            raise KeyError(
                f"sources.{name}: no rehearsal generator for local adapter {spec['adapter']!r}"
            )
        root = workdir / location["path"]
        if root.exists():
            shutil.rmtree(root)
        summary["local"][name] = local[spec["adapter"]](root, scale)
    quality = config.get("translation", {}).get("quality", {})
    if quality.get("enabled"):
        summary["local"]["wmt24"] = gen.build_wmt24(workdir / quality["test_file"], scale)
    summary["local"]["annotations"] = gen.build_annotations(workdir / ANNOTATIONS, scale)


def main() -> None:
    """Command line: build the cache and local sources for one config."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--workdir", type=Path, default=Path("build/rehearsal"))
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    summary = build(args.config, args.workdir, args.scale)
    print(json.dumps({k: summary[k] for k in ("pins", "seconds")}, indent=2))


if __name__ == "__main__":
    main()
