"""The study graph as users inspect it: config validation, full-study dry run, partial targets."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
import yaml

from tests.support.workflow import job_counts, make_workdir, snakemake

STUDY_COUNTS = {
    "stage_source": 17,
    "normalize_source": 14,
    "normalize_corpus": 3,
    "translate_shard": 8 * 16,
    "gather_translation": 8,
    "synthesize": 3,
    "translation_quality": 1,
    "translation_comet": 1,
    "translation_quality_report": 1,
    "build_dataset": 1,
    "test_sets": 1,
    "build_mixture": 7,
    "prepare_base_model": 1,
    "render_train_config": 7,
    "token_lengths": 7,
    "train": 7,
    "merge_adapter": 7,
    "predict": 8,
    "judge": 8,
    "score": 8,
    "position_bias": 8,
    "position_bias_table": 1,
    "stage_annotations": 1,
    "metaeval": 1,
    "plot_judge_length": 1,
    "significance": 1,
    "table1": 1,
    "plot_table1": 1,
    "plot_per_dataset": 1,
    "all": 1,
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("dry"))


def _write_config(workdir: Path, name: str, edit) -> str:
    config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
    edit(config)
    path = workdir / "config" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return f"config/{name}"


def test_full_study_dry_run_builds_every_job_quickly(workdir: Path) -> None:
    # CPU time of the snakemake process, not wall time: the shared, loaded CI machine's other
    # work does not count (about 2 s of CPU here)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = snakemake(workdir, "-n", "--quiet", "rules")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert job_counts(proc.stdout) == STUDY_COUNTS
    assert cpu < 10, f"full-study dry run took {cpu:.1f}s of CPU"


def test_typo_in_config_key_stops_before_any_job(workdir: Path) -> None:
    path = _write_config(workdir, "typo.yaml", lambda c: c["training"].update(learnig_rate=1e-4))
    proc = snakemake(workdir, "-n", "--configfile", path, check=False)
    assert proc.returncode != 0
    assert "learnig_rate" in proc.stdout
    assert "Job stats" not in proc.stdout


def test_wrong_type_names_the_key(workdir: Path) -> None:
    path = _write_config(workdir, "type.yaml", lambda c: c["mixtures"].update(size="big"))
    proc = snakemake(workdir, "-n", "--configfile", path, check=False)
    assert proc.returncode != 0
    assert "size" in proc.stdout and "'big'" in proc.stdout


def test_inconsistent_test_set_is_rejected(workdir: Path) -> None:
    def edit(config: dict) -> None:
        config["evaluation"]["test_sets"]["medqa-mcqu"]["origin"] = "native"

    path = _write_config(workdir, "origin.yaml", edit)
    proc = snakemake(workdir, "-n", "--configfile", path, check=False)
    assert proc.returncode != 0
    assert "evaluation.test_sets.medqa-mcqu.origin" in proc.stdout


def test_one_mixture_target_builds_only_its_chain(workdir: Path) -> None:
    # targets go before --configfile, which takes several values
    target = "results/demo/targets/mixture_NAT.done"
    proc = snakemake(workdir, target, "-n", "--quiet", "rules", "--configfile", "config/demo.yaml")
    counts = job_counts(proc.stdout)
    assert counts["build_mixture"] == 1
    assert counts["train"] == 1
    assert counts["predict"] == 1
    assert counts["score"] == 1
    assert "table1" not in counts
    details = snakemake(workdir, target, "-n", "--configfile", "config/demo.yaml").stdout
    assert "results/demo/mixtures/NAT/" in details
    assert "results/demo/mixtures/TRAD/" not in details


def test_slurm_profile_is_found_from_the_repo_root(workdir: Path) -> None:
    # the study config: GPU rules must request GPUs and get the profile's gpu partition
    proc = snakemake(workdir, "-n", "--profile", "slurm")
    train = proc.stdout.split("\nrule train:")[1].split("\nrule ")[0]
    assert "slurm_partition=gpu" in train
    assert "gpu=2" in train and "mem_mb=128000" in train and "runtime=1440" in train
    # the launcher turns the job's 2 GPUs into torchrun with a port from SLURM_JOB_ID
    assert "python -m medinjection.modeling.launch --gpus 2 -- --config" in train
    # BERTScore of the open answers runs on the score job's GPU (compute.score)
    score = proc.stdout.split("\nrule score:")[1].split("\nrule ")[0]
    assert "slurm_partition=gpu" in score and "gpu=1" in score and "mem_mb=16000" in score
    stage = proc.stdout.split("\nrule stage_source:")[1].split("\nrule ")[0]
    assert "slurm_partition=cpu" in stage and "gpu=" not in stage
    assert (
        job_counts(snakemake(workdir, "-n", "--profile", "slurm", "--quiet", "rules").stdout)[
            "train"
        ]
        == 7
    )


def test_live_mode_without_api_key_stops_before_any_job(workdir: Path, monkeypatch) -> None:
    path = _write_config(workdir, "live.yaml", lambda c: c["llm"].update(mode="live"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    proc = snakemake(workdir, "--configfile", path, "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "set the environment variable OPENAI_API_KEY" in proc.stdout
    assert not (workdir / "results/demo/resources/sources").exists()
    # a dry run needs no key
    assert snakemake(workdir, "-n", "--configfile", path).returncode == 0


def test_training_seeds_multiply_the_training_chain_only(workdir: Path) -> None:
    path = _write_config(workdir, "seeds.yaml", lambda c: c["training"].update(seeds=[42, 43]))
    counts = job_counts(snakemake(workdir, "-n", "--quiet", "rules", "--configfile", path).stdout)
    assert counts["build_mixture"] == 7  # one mixture, trained once per seed
    assert counts["render_train_config"] == counts["train"] == 14
    assert counts["predict"] == counts["judge"] == counts["score"] == 1 + 14
    assert counts["table1"] == 1
    details = snakemake(workdir, "-n", "-p", "--configfile", path).stdout
    assert "results/demo/train/NAT/seed43/adapter" in details
    assert "results/demo/scores/NAT/seed43.json" in details
    assert "results/demo/checkpoints/NAT/seed43" in details


def test_position_bias_reruns_follow_the_config(workdir: Path) -> None:
    details = snakemake(workdir, "-n", "-p", "--configfile", "config/demo.yaml").stdout
    assert "results/demo/predict/base/permuted/mediqal-mcq.parquet" in details
    assert "results/demo/predict/base/permuted/mediqal-oeq.parquet" not in details  # MCQ/MCQU only
    assert "results/demo/tables/position_bias.csv" in details
    off = _write_config(
        workdir, "nobias.yaml", lambda c: c["evaluation"]["position_bias"].update(permutations=0)
    )
    counts = job_counts(snakemake(workdir, "-n", "--quiet", "rules", "--configfile", off).stdout)
    assert counts["predict"] == 8 and "position_bias" not in counts
    assert "position_bias_table" not in counts


def test_translation_endpoint_per_source(workdir: Path) -> None:
    from medinjection.config_checks import translation_route

    def routed(by_source: dict):
        def edit(config: dict) -> None:
            gemini = dict(config["llm"]["endpoints"]["openai"], api_key_env="GEMINI_API_KEY")
            config["llm"]["endpoints"]["gemini"] = gemini
            price = {"input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.4, "batch_discount": 0.5}
            config["llm"]["prices"]["gemini-2.0-flash"] = price
            config["translation"]["by_source"] = by_source

        return edit

    good = {"medqa": {"endpoint": "gemini", "model": "gemini-2.0-flash"}}
    path = _write_config(workdir, "routed.yaml", routed(good))
    proc = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", path)
    assert job_counts(proc.stdout)["translate_shard"] > 0  # the per-source params evaluate
    config = yaml.safe_load((workdir / path).read_text())
    assert translation_route(config["translation"], "medqa") == ("gemini", "gemini-2.0-flash")
    assert translation_route(config["translation"], "pubmedqa") == ("openai", "gpt-4o-mini")
    # the cross-key checks the Snakefile runs first (in-process: no more snakemake runs)
    from medinjection.config_checks import StudyConfigError, check_study_config

    for bad, key in (
        ({"frbmedqa": good["medqa"]}, "translation.by_source.frbmedqa"),  # a native source
        ({"medqa": {"endpoint": "nowhere", "model": "m"}}, "translation.by_source.medqa.endpoint"),
    ):
        config = yaml.safe_load((workdir / "config" / "demo.yaml").read_text())
        routed(bad)(config)
        with pytest.raises(StudyConfigError, match=key.replace(".", r"\.")):
            check_study_config(config)
