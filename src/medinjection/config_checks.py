"""The study config's checks: what the Snakefile runs at parse time (check_study_config) and
at onstart (check_before_run), before any job starts, and the config lookups they share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from medinjection.api_keys import api_key_problem
from medinjection.sources.pins import source_problems

ROLE_ORIGIN = {"native": "native", "translate": "translated", "synthesize": "synthetic"}


class StudyConfigError(ValueError):
    """A config that passes the JSON schema but is inconsistent across keys."""


# llm.endpoints.<name> keys that pace a job (concurrency, rate limits, retries, timeouts), not
# what it computes: answers are cached by request content, whatever these values are
ENDPOINT_COMPUTE_KEYS = (
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "max_retries",
    "timeout_s",
)


class ComputeParams(Mapping[str, Any]):
    """A params value whose compute keys Snakemake never compares between runs.

    Snakemake 9 records a param for its rerun check only when it is a builtin type (its repr);
    this Mapping is not one, so at the top of `params:` it is not recorded, and nested in a dict
    its repr shows only the `tracked` keys. Scripts read it as any mapping (`dict(value)`).
    """

    def __init__(self, values: Mapping[str, Any], tracked: tuple[str, ...] = ()) -> None:
        self._values = dict(values)
        self._tracked = tuple(key for key in tracked if key in self._values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def tracked(self) -> dict[str, Any]:
        """The keys that do change a job's output."""
        return {key: self._values[key] for key in self._tracked}

    def __repr__(self) -> str:
        return f"ComputeParams({self.tracked()!r})"


def endpoint_params(endpoint: Mapping[str, Any]) -> ComputeParams:
    """An llm.endpoints entry as a params value: only its non-pacing keys count for reruns."""
    tracked = tuple(key for key in endpoint if key not in ENDPOINT_COMPUTE_KEYS)
    return ComputeParams(endpoint, tracked)


def check_study_config(config: Mapping[str, Any]) -> None:
    """Cross-key checks the JSON schema cannot express; raises StudyConfigError naming the key."""
    errors = [
        *_check_mixtures(config),
        *_check_test_sets(config),
        *_check_endpoints(config),
        *_check_judge_select(config),
        *_check_split_fractions(config),
        *_check_adapters(config),
        *_check_training(config),
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


def translation_route(translation: Mapping[str, Any], source: str) -> tuple[str, str]:
    """(endpoint name, model) that translates `source`: its `translation.by_source` entry, else
    `translation.endpoint` / `translation.model`."""
    route = (translation.get("by_source") or {}).get(source)
    if route is None:
        return translation["endpoint"], translation["model"]
    return route["endpoint"], route["model"]


def _check_endpoints(config: Mapping[str, Any]) -> list[str]:
    endpoints = config["llm"]["endpoints"]
    used = {
        "translation.endpoint": config["translation"]["endpoint"],
        "synthesis.endpoint": config["synthesis"]["endpoint"],
    }
    by_source = config["translation"].get("by_source") or {}
    for source, route in by_source.items():
        used[f"translation.by_source.{source}.endpoint"] = route["endpoint"]
    for name, spec in config["judge"]["candidates"].items():
        if spec["backend"] == "openai":
            used[f"judge.candidates.{name}.endpoint"] = spec["endpoint"]
    errors = [
        f"{key}: endpoint {name!r} is not defined in llm.endpoints (defined: {sorted(endpoints)})"
        for key, name in used.items()
        if name not in endpoints
    ]
    translate = {n for n, spec in config["sources"].items() if spec["role"] == "translate"}
    errors += [
        f"translation.by_source.{source}: {source!r} is not a translate source of this config "
        f"(translate sources: {sorted(translate)})"
        for source in by_source
        if source not in translate
    ]
    routes = [(stage, config[stage]["endpoint"], config[stage]["model"])
              for stage in ("translation", "synthesis")]  # fmt: skip
    routes += [
        (f"translation.by_source.{name}", route["endpoint"], route["model"])
        for name, route in by_source.items()
    ]
    for key, endpoint, model in routes:
        serve = endpoints.get(endpoint, {}).get("serve")
        if serve and serve["served_model_name"] != model:
            errors.append(
                f"{key}.model {model!r} differs from the name its self-hosted "
                f"endpoint serves (llm.endpoints.{endpoint}.serve."
                f"served_model_name {serve['served_model_name']!r}): make them equal"
            )
    return errors


def _check_adapters(config: Mapping[str, Any]) -> list[str]:
    from medinjection.sources import ADAPTERS, CORPUS_ADAPTERS

    errors = []
    for name, spec in config["sources"].items():
        corpus = spec["role"] == "synthesize"
        valid = CORPUS_ADAPTERS if corpus else ADAPTERS
        if spec["adapter"] not in valid:
            kind = "corpus adapter (role synthesize)" if corpus else "QA adapter"
            errors.append(
                f"sources.{name}.adapter: unknown {kind} {spec['adapter']!r}; "
                f"valid: {sorted(valid)}"
            )
    return errors


def local_source_inputs(path: str | Path) -> list[str]:
    """A local source's files as rule inputs (a folder: every file in it, sorted)."""
    # a folder's own mtime does not change when a file in it is edited in place: listing the
    # files makes such an edit re-stage the source
    root = Path(path)
    if not root.is_dir():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def _check_split_fractions(config: Mapping[str, Any]) -> list[str]:
    dataset = config["dataset"]
    validation, test = dataset["validation_fraction"], dataset["test_fraction"]
    if validation + test < 1:
        return []
    # a hash split cuts one uniform number at test, then test + validation: at >= 1 no record
    # is left for train
    return [
        f"dataset.validation_fraction ({validation}) + dataset.test_fraction ({test}) = "
        f"{validation + test:g} leaves no training records in a hash split; make the sum < 1"
    ]


def _check_judge_select(config: Mapping[str, Any]) -> list[str]:
    judge = config["judge"]
    if judge["select"] == "auto" or judge["select"] in judge["candidates"]:
        return []
    return [
        f"judge.select: {judge['select']!r} is neither 'auto' nor a judge.candidates name "
        f"({sorted(judge['candidates'])})"
    ]


def _check_training(config: Mapping[str, Any]) -> list[str]:
    distributed = config["training"]["distributed"]
    if distributed != "ddp" and int(config["compute"]["train"]["gpus"]) < 1:
        return [f"training.distributed {distributed!r} (DeepSpeed) needs compute.train.gpus >= 1"]
    return []


def _check_local_sources(config: Mapping[str, Any]) -> list[str]:
    errors = []
    for name, spec in config["sources"].items():
        location = spec["location"]
        staged = Path(config["results_dir"], "resources", "sources", name, "manifest.json")
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
    names |= {r["endpoint"] for r in (config["translation"].get("by_source") or {}).values()}
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
        if not var or endpoint.get("serve"):  # served: no key
            continue
        if not environ.get(var):
            missing.append(
                f"llm.endpoints.{name}.api_key_env: llm.mode is live, set the environment "
                f"variable {var}"
            )
        elif problem := api_key_problem(environ[var]):
            missing.append(f"llm.endpoints.{name}.api_key_env: {var}: {problem}")
    return missing
