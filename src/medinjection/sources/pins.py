"""Pinned Hub revisions: which sources are unpinned, resolving branches to commits, pre-run checks.

No commit hash is ever written by hand: `tools/pin_sources.py` asks the Hub which commit a branch
or tag points to (HfApi.repo_info) and writes it into the config; the stage rule also records
the commit it actually fetched in <results_dir>/resources/sources/{source}/manifest.json.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medinjection.sources.fetch import is_commit_sha

OFFLINE_VALUES = frozenset({"1", "true", "yes", "on"})


def hub_locations(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Hub location the run may stage, keyed by config path (sources.X / data.published.Y)."""
    found = {
        f"sources.{name}": spec["location"]
        for name, spec in config["sources"].items()
        if spec["location"]["kind"] == "hf"
    }
    data = config.get("data", {})
    if data.get("build") == "published":
        found = {}  # published mode stages only the released datasets
        for origin, location in data.get("published", {}).items():
            if location["kind"] == "hf":
                found[f"data.published.{origin}"] = location
    return found


def unpinned(config: Mapping[str, Any]) -> dict[str, str]:
    """Config path -> revision of every Hub location not pinned to a commit hash."""
    return {
        key: str(location.get("revision"))
        for key, location in hub_locations(config).items()
        if not is_commit_sha(str(location.get("revision", "")))
    }


def is_offline(config: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    """Offline when data.offline is true or HF_HUB_OFFLINE is set to a true value."""
    flag = environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES
    return flag or bool(config.get("data", {}).get("offline", False))


def source_problems(config: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Reasons the data stages cannot start (unpinned revisions, offline without staged files)."""
    problems = []
    loose = unpinned(config)
    if loose and not config.get("data", {}).get("allow_unpinned", False):
        listed = ", ".join(f"{key} ({rev})" for key, rev in sorted(loose.items()))
        problems.append(
            f"unpinned Hub revisions: {listed}. Pin them with `python tools/pin_sources.py "
            "config/config.yaml` (writes the commit each branch points to now), or set "
            "data.allow_unpinned: true to run on moving branches (the commits used are still "
            "recorded in each manifest.json)"
        )
    if is_offline(config, environ):
        for key, location in sorted(hub_locations(config).items()):
            staged = _staged_manifest(config, key)
            if not staged.exists() and not _in_hub_cache(location):
                problems.append(
                    f"offline mode: {key} ({location['repo']}@{location['revision']}) is neither "
                    f"staged ({staged} missing) nor in the Hugging Face cache; stage it once "
                    "online or provide it as a local location"
                )
    return problems


def _staged_manifest(config: Mapping[str, Any], key: str) -> Path:
    section, name = key.rsplit(".", 1)
    folder = "sources" if section == "sources" else "published"
    # the stage rules write <results_dir>/resources/... (workflow/rules/common.smk pathvars)
    return Path(config["results_dir"], "resources", folder, name, "manifest.json")


def _in_hub_cache(location: Mapping[str, Any]) -> bool:
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # no cache folder at all: nothing is cached
        return False
    for repo in cache.repos:
        if repo.repo_id == location["repo"]:
            for revision in repo.revisions:
                if location["revision"] in {revision.commit_hash, *revision.refs}:
                    return True
    return False


def resolve_revision(repo: str, revision: str, repo_type: str = "dataset") -> str:
    """The commit hash a branch or tag of a Hub repository points to now (network)."""
    from huggingface_hub import HfApi

    sha = HfApi().repo_info(repo, revision=revision, repo_type=repo_type).sha
    if not sha or not is_commit_sha(sha):
        raise RuntimeError(f"{repo}@{revision}: the Hub returned no commit hash ({sha!r})")
    return sha


def pin_config_text(text: str, pins: Mapping[str, str], revisions: Mapping[str, str]) -> str:
    """Config YAML text with `revision: <old>` replaced by the pinned hash after each repo."""
    for repo, sha in pins.items():
        pattern = re.compile(
            rf"(repo:\s*{re.escape(repo)}\b[^\n]*?revision:\s*){re.escape(revisions[repo])}\b"
        )
        text, count = pattern.subn(rf"\g<1>{sha}", text)
        if count == 0:
            raise ValueError(f"no `repo: {repo}, revision: {revisions[repo]}` found in the config")
    return text
