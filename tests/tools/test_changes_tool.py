"""tools/changes.py: the per-rule summary of what a dry run would rerun and why."""

from __future__ import annotations

from tests.conftest import load_script
from tests.support.workflow import REPO

changes = load_script("changes", "tools")

# the job blocks of a real `snakemake -n` (9.27.1) after translation.max_tokens 2048 -> 1000
DRY_RUN = """Building DAG of jobs...
[Mon Dec  7 14:28:22 2026]
rule translate_shard:
    input: results/demo/normalized/medqa/records.parquet, resources/demo/llm/recorded.jsonl
    output: results/demo/translate/medqa/shard_0.parquet, results/demo/translate/medqa/shard_0.usage.json
    jobid: 1
    reason: Params have changed since last execution: Union of exclusive params before and now across all output: before: 2048 now: 1000 
    wildcards: source=medqa, shard=0

[Mon Dec  7 14:28:22 2026]
rule translate_shard:
    input: results/demo/normalized/medqa/records.parquet, resources/demo/llm/recorded.jsonl
    output: results/demo/translate/medqa/shard_1.parquet, results/demo/translate/medqa/shard_1.usage.json
    jobid: 4
    reason: Params have changed since last execution: Union of exclusive params before and now across all output: before: '0123456789abcdef' now: 'fedcba9876543210' 
    wildcards: source=medqa, shard=1

[Mon Dec  7 14:28:22 2026]
localrule gather_translation:
    input: results/demo/translate/medqa/shard_0.parquet, results/demo/translate/medqa/shard_1.parquet
    output: results/demo/translated/medqa/records.parquet
    jobid: 0
    reason: Input files updated by another job: results/demo/translate/medqa/shard_0.parquet, results/demo/translate/medqa/shard_1.parquet
    wildcards: source=medqa
Job stats:
"""  # noqa: E501, W291


def test_summary_names_rules_counts_and_reasons() -> None:
    assert changes.summary(DRY_RUN).splitlines() == [
        "3 jobs would run:",
        "rule                jobs  why",
        "translate_shard        2  params: 2048 -> 1000 (1); package code it reaches (1)",
        "gather_translation     1  after translate_shard",
    ]
    assert changes.summary("Nothing to be done (all requested files are present)").startswith(
        "Nothing to be done"
    )


def test_covers_lists_the_scripts_an_edit_reaches() -> None:
    train_config = REPO / "src/medinjection/modeling/train_config.py"
    hits = changes.covering_rules(train_config, "write_train_config")
    assert hits == ["render_train_config.py", "train (python -m medinjection.modeling.launch)"]
    # a module's `from __future__` line runs wherever the module is imported: the whole file
    # reaches the other train.smk scripts too (their stage module imports it)
    assert changes.covering_rules(train_config) == [
        "merge_adapter.py", "prepare_base_model.py", "render_train_config.py",
        "token_lengths.py", "train (python -m medinjection.modeling.launch)",
    ]  # fmt: skip
    # render_train_config only writes the JSON: the training loop is not its code
    hits = changes.covering_rules(REPO / "src/medinjection/modeling/train.py")
    assert hits == ["train (python -m medinjection.modeling.launch)"]
    # one stage module, three rules: each function reaches its own rule only
    groups = dict(
        (tuple(rules), names)
        for names, rules in changes.covering_by_name(REPO / "src/medinjection/stages/judge.py")
    )
    assert "run_metaeval" in groups[("metaeval.py",)]
    assert "stage_annotations" in groups[("stage_annotations.py",)]
    assert "judge_with_selection" in groups[("judge.py",)]
    assert "judge_run" in groups[("judge.py", "metaeval.py")]
