"""The pre-spend feasibility plan: expected pools, required draws, and the dry run that stops."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from medinjection.plan import InfeasiblePlan, check_plan, main, plan_draws
from medinjection.records import Record, write_records
from tests.support.workflow import make_workdir, snakemake

ROOT = Path(__file__).resolve().parents[1]
STUDY = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())


def _draw(draws, what: str, origin: str):
    (draw,) = [d for d in draws if d.what == what and d.origin == origin]
    return draw


def test_study_config_is_feasible_and_syn_has_its_margin(tmp_path: Path) -> None:
    draws = check_plan(STUDY, tmp_path)
    syn = _draw(draws, "mixture SYN train", "synthetic")
    # 4,638 documents x 9 MCQs x synthesis_yield 0.90 x (1 - dedup loss 0.03)
    assert syn.required == 33_493 and int(syn.expected) == int(4638 * 9 * 0.90 * 0.97)
    assert 0.05 < syn.margin < 0.15
    nat = _draw(draws, "mixture NAT train", "native")
    assert nat.required == 33_493 and nat.expected > 40_000
    # ALL: thirds by largest remainder, the first origin in name order takes the extra record
    assert [d.required for d in draws if d.what == "mixture ALL train"] == [11_165, 11_164, 11_164]
    assert _draw(draws, "shared validation", "native").required == 1_000


def test_seven_mcqs_per_document_cannot_feed_syn(tmp_path: Path) -> None:
    config = copy.deepcopy(STUDY)
    config["synthesis"]["mcq_per_document"] = 7
    with pytest.raises(InfeasiblePlan, match=r"mixture SYN train: needs 33,493 synthetic") as err:
        check_plan(config, tmp_path)
    assert "synthesis.mcq_per_document" in str(err.value)
    assert "mixture NAT" not in str(err.value)


def test_a_test_set_on_a_source_without_test_split_is_refused(tmp_path: Path) -> None:
    config = copy.deepcopy(STUDY)
    spec = {"origin": "native", "source": "medical_mqca_fr", "task": "mcqu"}
    config["evaluation"]["test_sets"]["medical_mqca_fr-mcqu"] = spec
    with pytest.raises(InfeasiblePlan, match=r"change evaluation\.test_sets\.medical_mqca_fr-mcqu"):
        check_plan(config, tmp_path)


def test_hash_sizes_follow_the_split_fractions_and_groups_need_all_their_tasks(
    tmp_path: Path,
) -> None:
    config = copy.deepcopy(DEMO)
    config["plan"]["dedup_loss"] = {}
    config["plan"]["source_sizes"] = {
        "mediqal": {"mcqu": {"hash": 1000}, "mcq|oeq": {"train": 500}},
        "frenchmedmcqa": {"mcq|mcqu": {"hash_train_validation": 100}},
    }
    draws = plan_draws(config, tmp_path)
    nat = _draw(draws, "mixture NAT train", "native")
    # 1000 x (1 - 0.15 - 0.2) + 100 x (1 - 0.15); the mcq|oeq group is not all in [mcq, mcqu]
    assert nat.expected == pytest.approx(650 + 85)
    assert nat.basis == (
        "declared (mediqal, frenchmedmcqa); unknown (frbmedqa, medical_cases_fr, medical_mqca_fr)"
    )
    assert _draw(draws, "shared validation", "native").expected == pytest.approx(150 + 15)


def test_built_records_replace_the_declared_sizes(tmp_path: Path) -> None:
    records = [
        Record(f"deft2021:d{i}:mcq:0", "synthetic", "deft2021", "mcqu", "train", "Q ?", "A",
               (("A", "x"), ("B", "y"), ("C", "z"), ("D", "w")), language="fr")
        for i in range(7)
    ]  # fmt: skip
    config = copy.deepcopy(DEMO)
    built = tmp_path / config["results_dir"] / "synthetic" / "deft2021" / "records.parquet"
    write_records(records, built)
    config["plan"]["dedup_loss"] = {}
    syn = _draw(plan_draws(config, tmp_path), "mixture SYN train", "synthetic")
    # deft2021 built (7 records); diamed and morfitt: 12 documents x 2 MCQs x 0.95
    assert syn.expected == pytest.approx(7 + 2 * 12 * 2 * 0.95)
    assert syn.basis.startswith("built (deft2021); llm.estimate.volumes")


def test_plan_command_prints_the_table_and_fails_on_an_infeasible_draw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--configfile", str(ROOT / "config" / "config.yaml"), "--root", str(tmp_path),
                 "--out", str(tmp_path / "plan.md")]) == 0  # fmt: skip
    table = (tmp_path / "plan.md").read_text()
    assert "| mixture SYN train | synthetic | mcq/mcqu | train | 36,440 | 33,493 | +8.8% |" in table
    broken = copy.deepcopy(STUDY)
    broken["mixtures"]["size"] = 60_000
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    assert main(["--configfile", str(path), "--root", str(tmp_path)]) == 1
    assert "| mixture NAT train **FAILS** |" in capsys.readouterr().out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("plan"))


def test_dry_run_of_an_infeasible_study_config_names_the_mixture_and_key(workdir: Path) -> None:
    config = copy.deepcopy(STUDY)
    config["synthesis"]["mcq_per_document"] = 6
    (workdir / "config" / "broken.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(workdir, "-n", "--configfile", "config/broken.yaml", check=False)
    assert proc.returncode != 0
    assert "mixture SYN train: needs 33,493 synthetic" in proc.stdout
    assert "synthesis.mcq_per_document" in proc.stdout
    assert "Job stats" not in proc.stdout
