"""Checks and fingerprints the Snakefile runs at parse time, before any job starts."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import medinjection
from medinjection.sources.pins import source_problems

ROLE_ORIGIN = {"native": "native", "translate": "translated", "synthesize": "synthetic"}


class StudyConfigError(ValueError):
    """A config that passes the JSON schema but is inconsistent across keys."""


def package_fingerprint() -> str:
    """Version plus a short hash of the package sources, so code edits show in params changes."""
    root = Path(medinjection.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{medinjection.__version__}+{digest.hexdigest()[:12]}"


def check_study_config(config: Mapping[str, Any]) -> None:
    """Cross-key checks the JSON schema cannot express; raises StudyConfigError naming the key."""
    errors = [
        *_check_mixtures(config),
        *_check_test_sets(config),
        *_check_endpoints(config),
        *_check_judge_select(config),
    ]
    if errors and config.get("data", {}).get("build") == "published":
        errors.append(
            "data.build is published: sources and test sets are those of the released data "
            "(medinjection_<origin>); config/published.yaml is the study config for that path"
        )
    if errors:
        raise StudyConfigError("invalid study config:\n  - " + "\n  - ".join(errors))


def _source_origins(config: Mapping[str, Any]) -> dict[str, str]:
    """Source name -> origin of its records (published mode: medinjection_<origin>)."""
    data = config.get("data", {})
    if data.get("build") == "published":
        return {f"medinjection_{origin}": origin for origin in data.get("published", {})}
    return {name: ROLE_ORIGIN[spec["role"]] for name, spec in config["sources"].items()}


def _check_mixtures(config: Mapping[str, Any]) -> list[str]:
    errors = []
    available = set(_source_origins(config).values())
    for name, shares in config["mixtures"]["definitions"].items():
        missing = sorted(set(shares) - available)
        if missing:
            errors.append(
                f"mixtures.definitions.{name}: origin(s) {missing} have no source in `sources` "
                f"(available: {sorted(available)})"
            )
        if not any(weight > 0 for weight in shares.values()):
            errors.append(f"mixtures.definitions.{name}: at least one share must be > 0")
    return errors


def _check_test_sets(config: Mapping[str, Any]) -> list[str]:
    errors = []
    origins = _source_origins(config)
    for name, spec in config["evaluation"]["test_sets"].items():
        key = f"evaluation.test_sets.{name}"
        if spec["source"] not in origins:
            errors.append(
                f"{key}.source: unknown source {spec['source']!r} (known: {sorted(origins)})"
            )
        elif origins[spec["source"]] != spec["origin"]:
            errors.append(
                f"{key}.origin: records of source {spec['source']!r} have origin "
                f"{origins[spec['source']]!r}, not {spec['origin']!r}"
            )
    return errors


def _check_endpoints(config: Mapping[str, Any]) -> list[str]:
    endpoints = config["llm"]["endpoints"]
    used = {
        "translation.endpoint": config["translation"]["endpoint"],
        "synthesis.endpoint": config["synthesis"]["endpoint"],
    }
    for name, spec in config["judge"]["candidates"].items():
        if spec["backend"] == "openai":
            used[f"judge.candidates.{name}.endpoint"] = spec["endpoint"]
    errors = [
        f"{key}: endpoint {name!r} is not defined in llm.endpoints (defined: {sorted(endpoints)})"
        for key, name in used.items()
        if name not in endpoints
    ]
    for stage in ("translation", "synthesis"):
        serve = endpoints.get(config[stage]["endpoint"], {}).get("serve")
        if serve and serve["served_model_name"] != config[stage]["model"]:
            errors.append(
                f"{stage}.model {config[stage]['model']!r} differs from the name its self-hosted "
                f"endpoint serves (llm.endpoints.{config[stage]['endpoint']}.serve."
                f"served_model_name {serve['served_model_name']!r}): make them equal"
            )
    return errors


def _check_judge_select(config: Mapping[str, Any]) -> list[str]:
    judge = config["judge"]
    if judge["select"] == "auto" or judge["select"] in judge["candidates"]:
        return []
    return [
        f"judge.select: {judge['select']!r} is neither 'auto' nor a judge.candidates name "
        f"({sorted(judge['candidates'])})"
    ]


def _check_local_sources(config: Mapping[str, Any]) -> list[str]:
    errors = []
    for name, spec in config["sources"].items():
        location = spec["location"]
        staged = Path("resources/sources") / name / "manifest.json"
        if (
            location["kind"] == "local"
            and not Path(location["path"]).exists()
            and not staged.exists()
        ):
            hint = location.get("obtain", "see config/README.md for where to get it")
            errors.append(
                f"sources.{name}.location.path: {location['path']!r} does not exist; "
                f"provide it ({hint})"
            )
    return errors


def check_before_run(config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
    """Checks for a real run (not a dry run): local source files present, API keys set."""
    errors = [
        *_check_local_sources(config),
        *source_problems(config, environ),
        *_check_api_keys(config, environ),
    ]
    if errors:
        raise StudyConfigError("cannot start the run:\n  - " + "\n  - ".join(errors))


def _check_api_keys(config: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    if config["llm"]["mode"] != "live":
        return []
    names = {config["translation"]["endpoint"], config["synthesis"]["endpoint"]}
    # the meta-evaluation runs every candidate judge, whichever one is selected
    names |= {
        spec["endpoint"]
        for spec in config["judge"]["candidates"].values()
        if spec["backend"] == "openai"
    }
    missing = []
    for name in sorted(names):
        endpoint = config["llm"]["endpoints"][name]
        var = endpoint.get("api_key_env")
        if var and not endpoint.get("serve") and not environ.get(var):  # served: no key
            missing.append(
                f"llm.endpoints.{name}.api_key_env: llm.mode is live, set the environment "
                f"variable {var}"
            )
    return missing
