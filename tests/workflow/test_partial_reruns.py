"""The edit -> rerun table (issue 13): after a complete demo run, each edit makes out of date
exactly the jobs it can affect, and nothing else.

Every row edits a copy (of the package, the config or the profile), never the real files, dry
runs on the session's one completed demo run (tests/conftest.py) and compares the job set.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.workflow import REPO, edit_once, job_counts, snakemake, touch_docs_and_comments

pytestmark = pytest.mark.slow
DEMO = ("--configfile", "config/demo.yaml")
PLOTS = {"plot_table1": 1, "plot_per_dataset": 1, "plot_judge_length": 1}
# what reads the score files of every model: significance, Table 1 and its plots
SCORE_TABLES = {"significance": 1, "table1": 1, **PLOTS, "all": 1}
# the same and the position-bias table, when the predictions change
TABLES = {"position_bias_table": 1, **SCORE_TABLES}
MODELS = 8  # base + 7 mixtures, one seed


def _dry_counts(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, int]:
    proc = snakemake(workdir, "-n", "--quiet", "rules", *args, env=env)
    if "Nothing to be done" in proc.stdout:
        return {}
    counts = job_counts(proc.stdout)
    assert counts, proc.stdout[-3000:]
    return counts


def _package_copy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the package and the environment that makes snakemake import it."""
    shutil.copytree(REPO / "src" / "medinjection", tmp_path / "medinjection")
    return tmp_path / "medinjection", {"PYTHONPATH": str(tmp_path)}


def _config(workdir: Path, tmp_path: Path, edit: Callable[[dict], None]) -> tuple[str, str]:
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return "--configfile", str(path)


def test_comments_and_docstrings_anywhere_in_the_package_rerun_nothing(
    demo_workdir: Path, tmp_path: Path
) -> None:
    package, env = _package_copy(tmp_path)
    modules = sorted(package.rglob("*.py"))
    for module in modules:
        touch_docs_and_comments(module)
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {}
    # the check can fail: the same copy with one real code change reruns something
    edit_once(package / "stages/report.py", "import logging\n", "import logging\nimport os\n")
    assert _dry_counts(demo_workdir, *DEMO, env=env) == SCORE_TABLES  # the report.smk rules


def test_scoring_logic_reruns_the_scores_and_what_reads_them(
    demo_workdir: Path, tmp_path: Path
) -> None:
    package, env = _package_copy(tmp_path)
    # the MCQ exact match: the scores and the position bias use it, the meta-evaluation does not
    # (it scores open answers), so the judge keeps its selection and its judgments
    edit_once(
        package / "evaluation/metrics.py",
        "    return 1.0 if set(gold) == set(pred) else 0.0\n",
        "    return float(set(gold) == set(pred))\n",
    )
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {
        "score": MODELS,
        "position_bias": MODELS,
        **TABLES,
    }
    # a text metric: the meta-evaluation scores the physicians' items with it too, and the
    # judge jobs read the judge it selects; stage_annotations does not use it and stays
    package, env = _package_copy(tmp_path / "rouge")
    edit_once(
        package / "evaluation/metrics.py",
        "            out[name].append(float(scores[name].fmeasure))\n",
        "            out[name].append(float(scores[name].fmeasure) + 0.0)\n",
    )
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {
        "metaeval": 1,
        "judge": MODELS,
        "score": MODELS,
        **SCORE_TABLES,
    }


def test_judge_prompt_reruns_judge_score_and_tables(demo_workdir: Path, tmp_path: Path) -> None:
    package, env = _package_copy(tmp_path)
    prompt = "JUDGE_SYSTEM_PROMPT = (\n"
    edit_once(package / "evaluation/judge.py", prompt, prompt + "    'Juge. '\n")
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {
        "metaeval": 1,  # it runs every candidate judge with the same prompt
        "judge": MODELS,
        "score": MODELS,
        **SCORE_TABLES,
    }


def test_a_stage_function_reruns_its_rule_and_what_reads_its_outputs(
    demo_workdir: Path, tmp_path: Path
) -> None:
    # run_metaeval shares stages/judge.py with the judge and stage_annotations rules: only its
    # rule's code changes, and the judge jobs rerun because they read its selection
    package, env = _package_copy(tmp_path)
    edit_once(
        package / "stages/judge.py",
        '    log.info("meta-evaluation on %d annotated items (%s)", len(items), annotations)\n',
        '    log.info("meta-evaluation: %d annotated items (%s)", len(items), annotations)\n',
    )
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {
        "metaeval": 1,
        "judge": MODELS,
        "score": MODELS,
        **SCORE_TABLES,
    }


def test_judge_settings_rerun_judge_score_and_tables(demo_workdir: Path, tmp_path: Path) -> None:
    def edit(config: dict) -> None:
        config["judge"]["candidates"]["tiny-base"]["max_tokens"] = 2

    assert _dry_counts(demo_workdir, *_config(demo_workdir, tmp_path, edit)) == {
        "metaeval": 1,
        "judge": MODELS,
        "score": MODELS,
        **SCORE_TABLES,
    }


def test_learning_rate_reruns_training_and_after_but_no_data_stage(
    demo_workdir: Path, tmp_path: Path
) -> None:
    def edit(config: dict) -> None:
        config["training"]["learning_rate"] = 1.0e-3

    mixtures = MODELS - 1
    assert _dry_counts(demo_workdir, *_config(demo_workdir, tmp_path, edit)) == {
        "render_train_config": mixtures,
        "train": mixtures,
        "predict": mixtures,  # the base model's predictions stay
        "judge": mixtures,
        "score": mixtures,
        "position_bias": mixtures,
        **TABLES,
    }


def test_compute_settings_rerun_nothing(demo_workdir: Path, tmp_path: Path) -> None:
    def edit(config: dict) -> None:
        # every job family's resources (the whole compute block)
        for job in ("train", "merge_adapter", "token_lengths", "predict", "judge", "score"):
            config["compute"][job].update(mem_mb=64000, runtime_min=600, gpus=2)
        config["compute"]["comet"]["gpus"] = 1
        # pacing of the LLM endpoints and of the Batch API: answers are cached by content
        config["llm"]["endpoints"]["openai"].update(
            max_concurrency=1, requests_per_minute=10, max_retries=9, timeout_s=5
        )
        config["llm"]["batch"].update(poll_s=5, rounds=1)

    assert _dry_counts(demo_workdir, *_config(demo_workdir, tmp_path, edit)) == {}
    # the SLURM profile's partitions and retries are compute too
    profile = tmp_path / "profile"
    shutil.copytree(REPO / "profiles" / "slurm", profile)
    edit_once(profile / "profile.yaml", "retries: 2\n", "retries: 5\n")
    edit_once(profile / "profile.yaml", "  slurm_partition: cpu\n", "  slurm_partition: long\n")
    text = (profile / "profile.yaml").read_text()
    (profile / "profile.yaml").write_text(text.replace("partition: gpu", "partition: a100"))
    assert _dry_counts(demo_workdir, *DEMO, "--profile", str(profile)) == {}


def test_prediction_code_reruns_predict_and_after_for_every_model_no_training(
    demo_workdir: Path, tmp_path: Path
) -> None:
    package, env = _package_copy(tmp_path)
    edit_once(
        package / "stages/predict.py",
        "    return max_new_tokens_oeq\n",
        "    return max(1, max_new_tokens_oeq)\n",
    )
    assert _dry_counts(demo_workdir, *DEMO, env=env) == {
        "predict": MODELS,
        "judge": MODELS,
        "score": MODELS,
        "position_bias": MODELS,
        **TABLES,
    }


def test_new_test_set_reruns_predictions_and_what_reads_them(
    demo_workdir: Path, tmp_path: Path
) -> None:
    def edit(config: dict) -> None:
        config["evaluation"]["test_sets"]["medxpertqa-mcqu"] = {
            "origin": "translated",
            "source": "medxpertqa",
            "task": "mcqu",
        }

    assert _dry_counts(demo_workdir, *_config(demo_workdir, tmp_path, edit)) == {
        "test_sets": 1,
        "predict": MODELS,
        "judge": MODELS,
        "score": MODELS,
        "position_bias": MODELS,
        **TABLES,
    }
