"""Job counts of the edit -> rerun table (issue 13) on a complete result tree, by dry runs.

Each row edits a copy (package, config or profile; never the real files) and dry-runs in WORKDIR,
a copy of the repository whose CONFIG tree is complete: the demo after a run, or the study after
`snakemake --touch -F` over empty outputs (it records the metadata a real run would).

    python tools/rerun_table.py /tmp/demo config/demo.yaml
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.workflow import (  # noqa: E402
    REPO,
    edit_once,
    job_counts,
    snakemake,
    touch_docs_and_comments,
)


def _counts(workdir: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, int]:
    out = snakemake(workdir, "-n", "--quiet", "rules", *args, env=env).stdout
    return {} if "Nothing to be done" in out else job_counts(out)


def _package(tmp: Path, edit: Callable[[Path], None]) -> dict[str, str]:
    shutil.copytree(REPO / "src" / "medinjection", tmp / "medinjection")
    edit(tmp / "medinjection")
    return {"PYTHONPATH": str(tmp)}


def _with_config(workdir: Path, config: str, tmp: Path, edit: Callable[[dict], None]) -> str:
    data = yaml.safe_load((workdir / config).read_text())
    edit(data)
    (tmp / "edited.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return str(tmp / "edited.yaml")


def _docs(package: Path) -> None:
    for module in package.rglob("*.py"):
        touch_docs_and_comments(module)


def _metrics(package: Path) -> None:
    old = "    return 1.0 if set(gold) == set(pred) else 0.0\n"
    edit_once(package / "evaluation/metrics.py", old, "    return float(set(gold) == set(pred))\n")


def _rouge(package: Path) -> None:
    old = "            out[name].append(float(scores[name].fmeasure))\n"
    new = "            out[name].append(float(scores[name].fmeasure) + 0.0)\n"
    edit_once(package / "evaluation/metrics.py", old, new)


def _run_metaeval(package: Path) -> None:
    old = '    log.info("meta-evaluation on %d annotated items (%s)", len(items), annotations)\n'
    edit_once(package / "stages/judge.py", old, old.replace("evaluation on", "evaluation:"))


def _merge_adapter(package: Path) -> None:
    old = '    log.info("merged %s into %s -> %s", adapter_dir, base_dir, out_dir)\n'
    edit_once(package / "stages/train.py", old, old.replace("into", "in"))


def _judge_prompt(package: Path) -> None:
    prompt = "JUDGE_SYSTEM_PROMPT = (\n"
    edit_once(package / "evaluation/judge.py", prompt, prompt + "    'Juge. '\n")


def _predict(package: Path) -> None:
    old = "    return max_new_tokens_oeq\n"
    edit_once(package / "stages/predict.py", old, "    return max(1, max_new_tokens_oeq)\n")


def _resources(config: dict) -> None:
    for job in ("train", "merge_adapter", "token_lengths", "predict", "judge", "score"):
        config["compute"][job].update(mem_mb=64000, runtime_min=600)
    config["compute"]["train"]["gpus"] = 4
    for endpoint in config["llm"]["endpoints"].values():
        endpoint.update(max_concurrency=1, requests_per_minute=10, max_retries=9, timeout_s=5)
    config["llm"]["batch"].update(poll_s=5, rounds=1)


def _judge_settings(config: dict) -> None:
    for spec in config["judge"]["candidates"].values():
        spec["max_tokens"] = int(spec["max_tokens"]) + 1


def _mixture(config: dict) -> None:
    definitions = config["mixtures"]["definitions"]
    definitions["NAT-SYN"] = {"native": 2, "synthetic": 1}


def _test_set(config: dict) -> None:
    config["evaluation"]["test_sets"]["medxpertqa_extra-mcqu"] = {
        "origin": "translated",
        "source": "medxpertqa",
        "task": "mcqu",
    }


def _show(name: str, counts: dict[str, int]) -> None:
    print(f"{name}: {sum(counts.values())} jobs {counts}", flush=True)


def rows(workdir: Path, config: str, tmp: Path) -> dict[str, dict[str, int]]:
    """Row name -> job counts of its dry run (each printed as it comes)."""
    base = ("--configfile", config)
    out: dict[str, dict[str, int]] = {}
    for name, edit in (
        ("comment or docstring everywhere", _docs),
        ("MCQ exact match (metrics.exact_match)", _metrics),
        ("a text metric (metrics.rouge_per_item)", _rouge),
        ("judge prompt", _judge_prompt),
        ("prediction code", _predict),
        ("stage function stages/judge.py:run_metaeval", _run_metaeval),
        ("stage function stages/train.py:merge_adapter", _merge_adapter),
    ):
        sub = tmp / f"package{len(out)}"
        out[name] = _counts(workdir, *base, env=_package(sub, edit))
        _show(name, out[name])
    for name, config_edit in (
        ("judge settings (max_tokens)", _judge_settings),
        ("training.learning_rate", lambda c: c["training"].update(learning_rate=3.0e-4)),
        ("compute.* (gpus, mem_mb, runtime_min)", _resources),
        ("one mixture's definition", _mixture),
        ("a new test set", _test_set),
    ):
        sub = tmp / f"config{len(out)}"
        sub.mkdir()
        out[name] = _counts(
            workdir, "--configfile", _with_config(workdir, config, sub, config_edit)
        )
        _show(name, out[name])
    profile = tmp / "profile"
    shutil.copytree(REPO / "profiles" / "slurm", profile)
    text = (profile / "profile.yaml").read_text().replace("retries: 2", "retries: 5")
    (profile / "profile.yaml").write_text(text.replace("partition: gpu", "partition: a100"))
    out["profile partition, retries"] = _counts(workdir, *base, "--profile", str(profile))
    _show("profile partition, retries", out["profile partition, retries"])
    return out


def main() -> None:
    """CLI: print one line per row: total jobs (`all` included) and per rule."""
    workdir, config = Path(sys.argv[1]), sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        rows(workdir, config, Path(tmp))


if __name__ == "__main__":
    main()
