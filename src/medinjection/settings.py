"""The study config as typed, frozen settings: one dataclass per block, built once.

Each key of `workflow/schemas/config.schema.yaml` is declared here exactly once, as a field of
the dataclass of its block, in the schema's order (tests/test_settings.py checks both ways, with
types, enums, required keys and defaults). `StudySettings.from_config(config)` converts the
config dict that Snakemake has validated against the schema (which also fills the schema's
defaults) with one generic strict converter: an unknown key, a missing required key or a value of
the wrong type raises `SettingsError` naming the full key path (`training.lerning_rate`). Ranges,
patterns and cross-key rules stay the schema's and `config_checks.check_study_config`'s job.

Conventions of the conversion:
- a JSON array is a `tuple`, a map with free keys (sources, endpoints, mixtures, ...) a
  `Mapping[str, X]` (a plain dict: do not mutate it);
- a `number` key is annotated `float` but keeps the value it was given (an int stays an int, as
  PEP 484 allows), so `to_dict()` gives back exactly the config's values (`alpha: 16` stays 16,
  which matters for Snakemake params, compared by their repr);
- an optional key without a schema default is `X | None = None`, and `to_dict()` leaves it out
  when it is None: for the two optional keys that also accept null (prediction.python,
  evaluation.bertscore.baseline_path) null and absent mean the same, so both come back absent.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

Task = Literal["mcqu", "mcq", "oeq"]
Origin = Literal["native", "translated", "synthetic"]
LocationKind = Literal["hf", "local", "url", "github"]
Submit = Literal["direct", "batch"]
SignificanceMetric = Literal[
    "em",
    "em_mcq",
    "em_mcqu",
    "em_greedy",
    "hamming_mcq",
    "judge",
    "rougeL",
    "bertscore_f1",
    "bleu",
    "chrf",
]

_S = TypeVar("_S", bound="Settings")


class SettingsError(ValueError):
    """A config key that is unknown, missing or of the wrong type, named by its full path."""


class Settings:
    """Base of every settings block: strict construction from a mapping, plain values back."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_dict(cls: type[_S], data: Mapping[str, Any], path: str = "") -> _S:
        """Build this block from its mapping; `path` is the block's key path, for errors."""
        return _build(cls, data, path)

    def to_dict(self) -> dict[str, Any]:
        """The block as plain JSON-able values (dict, list, str, int, float, bool, None)."""
        return _plain(self)


# ---------------------------------------------------------------- shared definitions ($defs)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationSettings(Settings):
    """Where a source's (or the annotations') raw files come from (`$defs/location`)."""

    kind: LocationKind
    url: str | None = None
    sha256: str | None = None
    repo: str | None = None
    revision: str | None = None
    repo_type: Literal["dataset", "model"] | None = None
    files: tuple[str, ...] | None = None
    checksums: Mapping[str, str] | None = None
    path: str | None = None
    obtain: str | None = None
    extract: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointServeSettings(Settings):
    """`vllm serve` started by the jobs of a self-hosted endpoint (llm.endpoints.<name>.serve)."""

    model_path: str
    served_model_name: str
    gpus: int | None = None
    executable: str | None = None
    max_model_len: int | None = None
    extra_args: tuple[str, ...] | None = None
    ready_timeout_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSettings(Settings):
    """One OpenAI-compatible endpoint (`$defs/endpoint`)."""

    base_url: str
    api_key_env: str
    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_retries: int | None = None
    timeout_s: float | None = None
    serve: EndpointServeSettings | None = None


# ---------------------------------------------------------------- study, sources, data


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyBlock(Settings):
    """`study:` identity and global settings."""

    name: str
    seed: int
    prompt_version: Literal["official", "v1"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings(Settings):
    """`sources.<name>`: one source dataset."""

    role: Literal["native", "translate", "synthesize"]
    adapter: str
    location: LocationSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedSettings(Settings):
    """`data.published`: locations of the released datasets per origin."""

    native: LocationSettings | None = None
    translated: LocationSettings | None = None
    synthetic: LocationSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSettings(Settings):
    """`data:` how the data half of the study is obtained."""

    build: Literal["sources", "published"]
    offline: bool
    allow_unpinned: bool
    published: PublishedSettings


# ---------------------------------------------------------------- llm


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceSettings(Settings):
    """`llm.prices.<model>`: list prices of one model name."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    batch_discount: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings(Settings):
    """`llm.batch`: Batch API pacing."""

    poll_s: float
    max_requests: int
    max_bytes: int
    rounds: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSettings(Settings):
    """`llm.estimate.volumes.<source>`: expected volume of one source."""

    items: int
    chars_per_item: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateSettings(Settings):
    """`llm.estimate`: assumptions of the cost estimate."""

    chars_per_token: float
    translation_output_ratio: float
    output_tokens_per_item: Mapping[str, float]
    volumes: Mapping[str, VolumeSettings]


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmSettings(Settings):
    """`llm:` the client shared by translation, synthesis and API judges."""

    mode: Literal["live", "replay"]
    replay_file: str
    cache_dir: str
    endpoints: Mapping[str, EndpointSettings]
    prices: Mapping[str, PriceSettings]
    batch: BatchSettings
    estimate: EstimateSettings


# ---------------------------------------------------------------- translation and synthesis


@dataclass(frozen=True, slots=True, kw_only=True)
class TranslationRoute(Settings):
    """`translation.by_source.<source>`: endpoint and model of one translate source."""

    endpoint: str
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CometSettings(Settings):
    """`translation.quality.comet`: COMET scoring."""

    enabled: bool
    model_path: str
    batch_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySettings(Settings):
    """`translation.quality`: the translation-quality rule."""

    enabled: bool
    test_file: str
    comet: CometSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class TranslationSettings(Settings):
    """`translation:` EN->FR translation of the `translate` sources."""

    endpoint: str
    model: str
    by_source: Mapping[str, TranslationRoute] = field(default_factory=dict)
    shards: int
    temperature: float
    max_tokens: int
    submit: Submit
    max_quarantine_rate: float
    quality: QualitySettings


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTypesSettings(Settings):
    """`synthesis.task_types`: open-question items per document for each task type."""

    clinical_note_summarization: int | None = None
    factual_qa: int | None = None
    differential_diagnosis: int | None = None
    treatment_plan: int | None = None
    lab_interpretation: int | None = None
    patient_instructions: int | None = None
    clinical_reasoning_explanation: int | None = None
    medication_safety: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SynthesisSettings(Settings):
    """`synthesis:` synthetic QA generation from the `synthesize` sources."""

    endpoint: str
    model: str
    temperature: float
    max_tokens: int
    submit: Submit
    max_quarantine_rate: float
    mcq_per_document: int
    task_types: TaskTypesSettings


# ---------------------------------------------------------------- dataset, plan, mixtures


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetSettings(Settings):
    """`dataset:` merging, splitting, dedup and decontamination."""

    split_seed: int
    validation_fraction: float
    test_fraction: float
    max_quarantine_rate: float
    near_duplicate_threshold: float
    deduplicate: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DedupLossSettings(Settings):
    """`plan.dedup_loss`: expected dedup loss per origin."""

    native: float | None = None
    translated: float | None = None
    synthetic: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitSizes(Settings):
    """`plan.source_sizes.<source>.<task>`: records of one task by split."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None
    hash: int | None = None
    hash_train_validation: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSettings(Settings):
    """`plan:` assumptions of the pre-spend feasibility check."""

    translation_yield: float
    synthesis_yield: float
    dedup_loss: DedupLossSettings
    source_sizes: Mapping[str, Mapping[str, SplitSizes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MixtureShares(Settings):
    """`mixtures.definitions.<name>`: one mixture's origin shares."""

    native: float | None = None
    translated: float | None = None
    synthetic: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MixturesSettings(Settings):
    """`mixtures:` the training mixtures."""

    size: int
    validation_size: int
    seed: int
    validation_origins: tuple[Origin, ...] | None = None
    tasks: tuple[Task, ...]
    definitions: Mapping[str, MixtureShares]


# ---------------------------------------------------------------- models, training, prediction


@dataclass(frozen=True, slots=True, kw_only=True)
class HubModelSettings(Settings):
    """`base_model.hub`: the Hub location of the base model."""

    repo: str
    revision: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TinyModelSettings(Settings):
    """`base_model.tiny`: the tiny Qwen3 architecture of the demo."""

    hidden_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    seed: int | None = None
    initializer_range: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseModelSettings(Settings):
    """`base_model:` the model every mixture fine-tunes."""

    name: str
    kind: Literal["hub", "local", "tiny"]
    hub: HubModelSettings | None = None
    local_path: str | None = None
    tiny: TinyModelSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings(Settings):
    """`training:` LoRA/DoRA SFT (the field order is the schema's: HPARAM_KEYS follows it)."""

    method: Literal["dora", "lora"]
    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]
    learning_rate: float
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"]
    warmup_ratio: float
    per_device_batch_size: int
    gradient_accumulation_steps: int
    distributed: Literal["ddp", "zero2", "zero3"]
    max_length: int
    epochs: float
    max_steps: int
    seeds: tuple[int, ...]
    bf16: bool
    gradient_checkpointing: bool
    loss_on: Literal["conversation", "answer"]
    packing: bool
    group_by_length: bool
    pad_to_multiple_of: int
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"]
    liger_kernel: bool
    save_steps: int
    logging_steps: int

    def run_hparams(self, seed: int) -> dict[str, Any]:
        """One training run's hyper-parameters: this block's values in its order, `seeds`
        replaced by the run's own `seed` (the `hparams` of its rendered train_config.json)."""
        return {
            ("seed" if key == "seeds" else key): (seed if key == "seeds" else value)
            for key, value in self.to_dict().items()
        }

    @classmethod
    def from_run_hparams(cls, hparams: Mapping[str, Any]) -> tuple[TrainingSettings, int]:
        """(block, seed) of one run's hyper-parameters (`run_hparams`), converted strictly:
        an unknown, missing or mistyped key raises SettingsError naming `training.<key>`."""
        if "seed" not in hparams or "seeds" in hparams:
            raise SettingsError(
                "training hparams of one run need `seed` (the run's own), not `seeds`; "
                f"got keys {sorted(hparams)}"
            )
        seed = _scalar(int, hparams["seed"], "training.seed")
        values = {("seeds" if k == "seed" else k): ([v] if k == "seed" else v)
                  for k, v in hparams.items()}  # fmt: skip
        return cls.from_dict(values, "training"), seed


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionSettings(Settings):
    """`prediction:` predictions of base + fine-tuned models on the test sets."""

    backend: Literal["vllm", "transformers"]
    batch_size: int
    max_new_tokens_oeq: int
    max_model_len: int | None
    python: str | None = None


# ---------------------------------------------------------------- evaluation, judge, metaeval


@dataclass(frozen=True, slots=True, kw_only=True)
class TestSetSettings(Settings):
    """`evaluation.test_sets.<name>`: which records one test set holds."""

    __test__ = False  # not a pytest class, whatever its name

    origin: Origin
    source: str
    task: Task


@dataclass(frozen=True, slots=True, kw_only=True)
class BertScoreSettings(Settings):
    """`evaluation.bertscore`: the BERTScore backbone."""

    model: str
    num_layers: int
    lang: str
    rescale_with_baseline: bool
    baseline_path: str | None = None
    batch_size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignificanceSettings(Settings):
    """`evaluation.significance`: paired significance tests between models."""

    metrics: tuple[SignificanceMetric, ...]
    method: Literal["bootstrap", "permutation"] | None = None
    correction: Literal["holm", "bh"]
    alpha: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapSettings(Settings):
    """`evaluation.bootstrap`: bootstrap confidence intervals."""

    samples: int
    seed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionBiasSettings(Settings):
    """`evaluation.position_bias`: option-shuffled reruns of the MCQ/MCQU test sets."""

    permutations: int
    seed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationSettings(Settings):
    """`evaluation:` test sets and metric settings."""

    protocol: Literal["official", "letters"] = "official"
    test_sets: Mapping[str, TestSetSettings]
    bertscore: BertScoreSettings
    significance: SignificanceSettings
    bootstrap: BootstrapSettings
    position_bias: PositionBiasSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeServeSettings(Settings):
    """`judge.candidates.<name>.serve`: how `vllm serve` is started for a vllm_server judge."""

    executable: str | None = None
    max_model_len: int | None = None
    extra_args: tuple[str, ...] | None = None
    ready_timeout_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeCandidateSettings(Settings):
    """`judge.candidates.<name>`: one candidate judge."""

    backend: Literal["vllm_server", "openai", "local"]
    model: str
    endpoint: str
    max_tokens: int
    serve: JudgeServeSettings | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeSettings(Settings):
    """`judge:` the candidate judges and which one scores the test sets."""

    refused: Literal["zero", "fail"]
    prompt_file: str = "config/prompts/judge_equivalence_paraphrase.txt"
    select: str
    select_by: Literal["pearson", "spearman", "kendall"]
    candidates: Mapping[str, JudgeCandidateSettings]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaevalSettings(Settings):
    """`metaeval:` meta-evaluation of the judge and metrics against physician annotations."""

    annotations: LocationSettings
    candidate_field: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResources(Settings):
    """`compute.<job>`: GPUs, memory (MB) and runtime (minutes) of one job family."""

    gpus: int
    mem_mb: int
    runtime_min: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CometComputeSettings(Settings):
    """`compute.comet`: GPUs of the COMET job."""

    gpus: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeSettings(Settings):
    """`compute:` resources of every job family, apart from the study design (never params)."""

    train: JobResources
    merge_adapter: JobResources
    token_lengths: JobResources
    predict: JobResources
    judge: JobResources
    score: JobResources
    comet: CometComputeSettings


# ---------------------------------------------------------------- the whole config


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySettings(Settings):
    """The whole study config (the schema's top level)."""

    results_dir: str
    study: StudyBlock
    sources: Mapping[str, SourceSettings]
    data: DataSettings
    llm: LlmSettings
    translation: TranslationSettings
    synthesis: SynthesisSettings
    dataset: DatasetSettings
    plan: PlanSettings
    mixtures: MixturesSettings
    base_model: BaseModelSettings
    training: TrainingSettings
    prediction: PredictionSettings
    evaluation: EvaluationSettings
    judge: JudgeSettings
    metaeval: MetaevalSettings
    compute: ComputeSettings

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StudySettings:
        """Settings from the schema-validated config dict (Snakemake's `config`)."""
        return _build(cls, config, "")


# ---------------------------------------------------------------- the generic converter


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of a settings dataclass, in declaration order."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def is_optional(spec: dataclasses.Field[Any]) -> bool:
    """Whether a settings field may be absent from the config (it has a default)."""
    return (
        spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING
    )


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _build(cls: type[_S], data: Any, path: str) -> _S:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{path or 'the config'}: expected a mapping, got {_shown(data)}")
    # as plain `type`: mypy checks type[_S] against Hashable through the instances' __hash__
    settings_class: type = cls
    types_ = field_types(settings_class)
    unknown = [str(key) for key in data if key not in types_]
    if unknown:
        raise SettingsError(
            f"unknown key {', '.join(_key(path, key) for key in unknown)} "
            f"(valid keys{' of ' + path if path else ''}: {', '.join(types_)}); "
            "check its spelling against workflow/schemas/config.schema.yaml"
        )
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.name in data:
            values[spec.name] = _convert(types_[spec.name], data[spec.name], _key(path, spec.name))
        elif not is_optional(spec):
            raise SettingsError(f"missing key {_key(path, spec.name)}: it is required")
    return cls(**values)


def _convert(annotation: Any, value: Any, path: str) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(inner, value, path)
    if origin is Literal:
        choices = get_args(annotation)
        if not any(value == c and type(value) is type(c) for c in choices):
            raise SettingsError(f"{path}: {_shown(value)} is not one of {list(choices)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise SettingsError(f"{path}: expected a list, got {_shown(value)}")
        (item, _ellipsis) = get_args(annotation)
        return tuple(_convert(item, entry, f"{path}[{i}]") for i, entry in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise SettingsError(f"{path}: expected a mapping, got {_shown(value)}")
        _, item = get_args(annotation)
        for key in value:
            if not isinstance(key, str):
                raise SettingsError(f"{path}: key {key!r} is not a string")
        return {key: _convert(item, entry, _key(path, key)) for key, entry in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, Settings):
        return _build(annotation, value, path)
    return _scalar(annotation, value, path)


def _scalar(annotation: Any, value: Any, path: str) -> Any:
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        # an int is a valid float (PEP 484) and is kept as given, so to_dict() round-trips
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is str:
        ok = isinstance(value, str)
    else:
        raise TypeError(f"{path}: settings annotation {annotation!r} is not supported")
    if not ok:
        raise SettingsError(f"{path}: expected {annotation.__name__}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return {
            spec.name: _plain(getattr(value, spec.name))
            for spec in dataclasses.fields(value)
            if not (getattr(value, spec.name) is None and spec.default is None)
        }
    if isinstance(value, tuple):
        return [_plain(entry) for entry in value]
    if isinstance(value, Mapping):
        return {key: _plain(entry) for key, entry in value.items()}
    return value
