"""The typed settings layer (medinjection.settings) against the config schema and the configs."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import pickle
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from snakemake.utils import update_config, validate

from medinjection import settings
from medinjection.modeling.train_config import HPARAM_KEYS
from medinjection.settings import (
    Settings,
    SettingsError,
    StudySettings,
    field_types,
    is_optional,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean"}
# the configs Snakemake is run with; a tuple = config files given together (merged in order)
CONFIGS = {
    "study": ("config/config.yaml",),
    "demo": ("config/demo.yaml",),
    "published": ("config/published.yaml",),
    "demo-vllm": ("config/demo.yaml", "config/demo-vllm.yaml"),
}


# ---------------------------------------------------------------- (a) dataclasses == schema


def _resolve(node: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return dict(node)
    return {**schema["$defs"][ref.split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}


def _schema_types(node: Mapping[str, Any]) -> set[str]:
    kind = node.get("type", "object")
    return set(kind) if isinstance(kind, list) else {kind}


def _split_none(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        inner = [arg for arg in args if arg is not type(None)]
        assert len(inner) == 1, annotation
        return inner[0], type(None) in args
    return annotation, False


def schema_problems(
    cls: type, node: Mapping[str, Any], schema: Mapping[str, Any], path: str, seen: set[type]
) -> list[str]:
    """Every disagreement between a settings dataclass and its schema node, by key path."""
    seen.add(cls)
    node = _resolve(node, schema)
    properties = node.get("properties", {})
    names = [spec.name for spec in dataclasses.fields(cls)]
    where = path or "<top level>"
    if names != list(properties):
        return [
            f"{where}: {cls.__name__} declares {names}, the schema {list(properties)} (keys only "
            f"in the class: {sorted(set(names) - set(properties))}, only in the schema: "
            f"{sorted(set(properties) - set(names))}; the order must be the schema's too)"
        ]
    if node.get("additionalProperties", True) is not False:
        return [f"{where}: the schema block is not closed (additionalProperties: false)"]
    required = set(node.get("required", []))
    problems = []
    for spec in dataclasses.fields(cls):
        key = f"{path}.{spec.name}" if path else spec.name
        child = _resolve(properties[spec.name], schema)
        if is_optional(spec) == (spec.name in required):
            problems.append(
                f"{key}: required in the schema is {spec.name in required}, "
                f"but the field {'has' if is_optional(spec) else 'has no'} default"
            )
        if "default" in child:
            factory = spec.default_factory
            default = spec.default if factory is dataclasses.MISSING else factory()
            if default != child["default"]:
                problems.append(f"{key}: default {default!r}, the schema's {child['default']!r}")
        elif is_optional(spec) and spec.default is not None:
            problems.append(f"{key}: optional without a schema default must default to None")
        absent_is_none = is_optional(spec) and "default" not in child
        problems += _type_problems(
            field_types(cls)[spec.name], child, schema, key, absent_is_none, seen
        )
    return problems


def _type_problems(
    annotation: Any,
    node: Mapping[str, Any],
    schema: Mapping[str, Any],
    key: str,
    absent_is_none: bool,
    seen: set[type],
) -> list[str]:
    node = _resolve(node, schema)
    kinds = _schema_types(node)
    inner, has_none = _split_none(annotation)
    problems = []
    if has_none != ("null" in kinds or absent_is_none):
        problems.append(
            f"{key}: `| None` in the annotation is {has_none}, but the schema "
            f"{'allows' if 'null' in kinds else 'does not allow'} null and the key "
            f"is {'optional without default' if absent_is_none else 'not'}"
        )
    kinds.discard("null")
    if "enum" in node:
        if get_origin(inner) is not Literal or set(get_args(inner)) != set(node["enum"]):
            problems.append(f"{key}: {inner} but the schema's enum is {node['enum']}")
        return problems
    if get_origin(inner) is Literal:
        return problems + [f"{key}: a Literal but the schema has no enum"]
    if get_origin(inner) is tuple:
        if kinds != {"array"}:
            return problems + [f"{key}: a tuple but the schema type is {kinds}"]
        return problems + _type_problems(
            get_args(inner)[0], node["items"], schema, f"{key}[]", False, seen
        )
    if get_origin(inner) is Mapping:
        extra = node.get("additionalProperties")
        if kinds != {"object"} or not isinstance(extra, dict) or "properties" in node:
            return problems + [f"{key}: a Mapping but the schema is not a map of free keys"]
        return problems + _type_problems(
            get_args(inner)[1], extra, schema, f"{key}.<name>", False, seen
        )
    if isinstance(inner, type) and issubclass(inner, Settings):
        if kinds != {"object"}:
            return problems + [f"{key}: a settings block but the schema type is {kinds}"]
        return problems + schema_problems(inner, node, schema, key, seen)
    if kinds != {SCALARS.get(inner)}:
        problems.append(f"{key}: {inner} but the schema type is {kinds}")
    return problems


def test_every_settings_field_is_a_schema_key_and_back() -> None:
    seen: set[type] = set()
    assert schema_problems(StudySettings, SCHEMA, SCHEMA, "", seen) == []
    declared = {
        cls
        for _, cls in inspect.getmembers(settings, inspect.isclass)
        if issubclass(cls, Settings) and cls is not Settings
    }
    assert declared - seen == set(), "settings classes no schema block reaches"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda s: s["properties"]["training"]["properties"].update(new_key={"type": "integer"}),
            "only in the schema: ['new_key']",
        ),
        (
            lambda s: s["properties"]["training"]["properties"].pop("learning_rate"),
            "only in the class: ['learning_rate']",
        ),
        (
            lambda s: s["properties"]["prediction"]["required"].remove("batch_size"),
            "prediction.batch_size: required in the schema is False",
        ),
        (
            lambda s: s["properties"]["training"]["properties"]["loss_on"]["enum"].append("all"),
            "training.loss_on: ",
        ),
        (
            lambda s: s["$defs"]["location"]["properties"]["extract"].update(type="string"),
            "sources.<name>.location.extract: <class 'bool'> but the schema type is {'string'}",
        ),
        (
            lambda s: s["properties"]["dataset"]["properties"]["deduplicate"].update(default=False),
            "dataset.deduplicate: default True, the schema's False",
        ),
    ],
)
def test_schema_check_catches_a_drift(edit: Any, expected: str) -> None:
    drifted = copy.deepcopy(SCHEMA)
    edit(drifted)
    problems = schema_problems(StudySettings, drifted, drifted, "", set())
    assert any(expected in problem for problem in problems), problems


def test_hparam_keys_are_the_training_block() -> None:
    # the rendered training config: the schema's `training:` keys in order, `seeds` -> the run's
    # own `seed` (the job's resources are compute.train, not training keys)
    schema_keys = SCHEMA["properties"]["training"]["properties"]
    assert not {"gpus", "mem_mb", "runtime_min"} & set(schema_keys)
    expected = ["seed" if key == "seeds" else key for key in schema_keys]
    assert list(HPARAM_KEYS) == expected
    assert len(HPARAM_KEYS) == 25


# ---------------------------------------------------------------- (b) the project's configs


def load_config(*files: str) -> dict[str, Any]:
    """The config as the Snakefile sees it: files merged as Snakemake merges them, validated
    against the schema with its defaults filled in (common.smk's `validate(config, schema=...)`).
    """
    config: dict[str, Any] = {}
    for name in files:
        update_config(config, yaml.safe_load((ROOT / name).read_text(encoding="utf-8")))
    validate(config, schema=str(SCHEMA_PATH))
    return config


@pytest.fixture(scope="module", params=list(CONFIGS))
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_config(*CONFIGS[request.param])


def test_configs_convert_and_round_trip(config: dict[str, Any]) -> None:
    study = StudySettings.from_config(config)
    # exact values back (an int stays an int: params are compared by their repr), any key order
    assert json.dumps(study.to_dict(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert pickle.loads(pickle.dumps(study)) == study  # Snakemake pickles a script's params
    for name in ("training", "llm", "evaluation", "judge"):  # a block alone, as a script gets it
        block = getattr(study, name)
        assert type(block).from_dict(config[name], name) == block
    assert study.training.seeds == tuple(config["training"]["seeds"])
    assert study.mixtures.definitions.keys() == config["mixtures"]["definitions"].keys()
    # the schema's defaults, filled by validate(), are the dataclasses' own
    assert study.dataset.deduplicate is config["dataset"]["deduplicate"]
    assert study.evaluation.protocol == config["evaluation"]["protocol"]


def test_validate_fills_the_defaults_the_dataclasses_declare() -> None:
    raw = yaml.safe_load((ROOT / "config/demo.yaml").read_text(encoding="utf-8"))
    for block, key in [
        ("dataset", "deduplicate"),
        ("evaluation", "protocol"),
        ("judge", "prompt_file"),
        ("translation", "by_source"),
    ]:
        raw[block].pop(key, None)
    unvalidated = StudySettings.from_config(copy.deepcopy(raw))
    validate(raw, schema=str(SCHEMA_PATH))
    assert raw["dataset"]["deduplicate"] is True and raw["translation"]["by_source"] == {}
    assert StudySettings.from_config(raw) == unvalidated


@pytest.fixture(scope="module")
def demo_config() -> dict[str, Any]:
    return load_config("config/demo.yaml")


def test_a_run_of_the_training_block_is_its_keys_with_the_run_seed(
    demo_config: dict[str, Any],
) -> None:
    # what render_train_config gets and writes: the config's values (an int alpha stays an int),
    # `seeds` replaced by the run's seed in place; and back, strictly
    training = StudySettings.from_config(demo_config).training
    hparams = training.run_hparams(7)
    assert list(hparams) == list(HPARAM_KEYS)
    assert hparams == {**{k: v for k, v in demo_config["training"].items() if k != "seeds"},
                       "seed": 7}  # fmt: skip
    assert [type(hparams[k]) for k in ("alpha", "learning_rate")] == [
        type(demo_config["training"][k]) for k in ("alpha", "learning_rate")
    ]
    back, seed = settings.TrainingSettings.from_run_hparams(hparams)
    assert seed == 7 and back == dataclasses.replace(training, seeds=(7,))
    with pytest.raises(SettingsError, match=r"training\.r: expected int, got str '16'"):
        settings.TrainingSettings.from_run_hparams({**hparams, "r": "16"})
    with pytest.raises(SettingsError, match="need `seed`"):
        settings.TrainingSettings.from_run_hparams(training.to_dict())


def test_settings_are_frozen_and_values_exact(demo_config: dict[str, Any]) -> None:
    study = StudySettings.from_config(demo_config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.training.learning_rate = 1.0  # type: ignore[misc]
    assert isinstance(study.training.target_modules, tuple)
    assert type(study.training.alpha) is type(demo_config["training"]["alpha"])
    assert study.training.to_dict()["target_modules"] == list(study.training.target_modules)


# ---------------------------------------------------------------- (c) errors name the key path


def _broken(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = broken
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return broken


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "training.lerning_rate",
            1e-4,
            "unknown key training.lerning_rate (valid keys of training",
        ),
        ("resutls_dir", "x", "unknown key resutls_dir"),
        ("llm.endpoints.openai.base_ur", "http://x", "unknown key llm.endpoints.openai.base_ur"),
        ("training.learning_rate", _DELETE, "missing key training.learning_rate"),
        ("training.r", "16", "training.r: expected int, got str '16'"),
        ("training.r", True, "training.r: expected int, got bool True"),
        ("training.learning_rate", "1e-4", "training.learning_rate: expected float, got str"),
        ("training.method", "qlora", "training.method: str 'qlora' is not one of ['dora', 'lora']"),
        ("training.seeds", [1, "2"], "training.seeds[1]: expected int"),
        ("training.target_modules", "q_proj", "training.target_modules: expected a list"),
        ("mixtures.definitions", ["NAT"], "mixtures.definitions: expected a mapping"),
        ("evaluation.bootstrap", 3, "evaluation.bootstrap: expected a mapping, got int 3"),
        ("prediction.python", 3, "prediction.python: expected str, got int 3"),
    ],
)
def test_bad_keys_and_types_name_the_key_path(
    demo_config: dict[str, Any], path: str, value: Any, message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        StudySettings.from_config(_broken(demo_config, path, value))
    assert message in str(error.value)


def test_a_mixture_key_names_its_mixture(demo_config: dict[str, Any]) -> None:
    broken = copy.deepcopy(demo_config)
    name = next(iter(broken["mixtures"]["definitions"]))
    broken["mixtures"]["definitions"][name] = {"natve": 1}
    with pytest.raises(SettingsError, match=rf"unknown key mixtures\.definitions\.{name}\.natve"):
        StudySettings.from_config(broken)


def test_compute_block_holds_every_job_and_deepspeed_needs_a_train_gpu(
    demo_config: dict[str, Any],
) -> None:
    from medinjection.config_checks import StudyConfigError, check_study_config

    compute = StudySettings.from_config(demo_config).compute
    assert [field.name for field in dataclasses.fields(compute)] == [
        "train", "merge_adapter", "token_lengths", "predict", "judge", "score", "comet"
    ]  # fmt: skip
    # no compute key is left in the study-design blocks (they would reach params)
    for block in ("training", "prediction"):
        assert not {"gpus", "mem_mb", "runtime_min"} & set(demo_config[block])
    config = copy.deepcopy(demo_config)
    config["training"]["distributed"] = "zero2"
    with pytest.raises(StudyConfigError, match=r"needs compute\.train\.gpus >= 1"):
        check_study_config(config)
    config["compute"]["train"]["gpus"] = 1
    check_study_config(config)
