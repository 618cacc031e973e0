"""Rehearse a study config end to end on CPU, offline, in its own work directory.

    python tools/rehearsal.py --config config/config.yaml --workdir build/rehearsal [--scale 1.0]

1. tools/rehearsal_hub.py writes <workdir>/hf/hub (every Hub source at its pinned revision) and
   the local sources where the config expects them (relative to <workdir>);
2. tools/rehearsal_server.py serves the OpenAI API (Batch API included) on a free local port;
3. snakemake runs the whole graph with `-d <workdir>` and the config files
   <config> + config/rehearsal.yaml + <workdir>/rehearsal_runtime.yaml (server URL, pins of the
   sources still on a branch, and below scale 1 the mixture sizes: the one scale key);
4. <workdir>/rehearsal_report.json gets wall time, CPU time and peak RSS (the whole run, and per
   job from snakemake's benchmark files), the server's counters, the response cache size on disk,
   and the feasibility plan (medinjection.plan) of the config as run, from the records the run
   built: per mixture, validation and test-set draw the pool, the draw and the margin (also in
   <workdir>/rehearsal_plan.md); <results_dir>/dataset/stats.csv is left in place.
   Below scale 1 the plan check the Snakefile makes while building the DAG of a fresh work
   directory sees the study's declared full-scale sizes (plan.source_sizes); the plan from the
   built records is the one that measures the scaled pools.

The environment of the run: HF_HUB_OFFLINE=1, HF_HUB_CACHE=<workdir>/hf/hub, a dummy
OPENAI_API_KEY / GEMINI_API_KEY (the real ones are never passed on).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import rehearsal_hub  # noqa: E402

OVERLAY = ROOT / "config" / "rehearsal.yaml"
OEQ_BUDGET = 64  # prediction.max_new_tokens_oeq of every rehearsal run (see runtime_overlay)


def runtime_overlay(config: dict[str, Any], base_url: str, pins: dict, scale: float) -> dict:
    """The per-run part of the overlay: server URL, branch pins, the open-question generation
    budget; below scale 1 the mixture sizes, translation shards and loss limit."""
    overlay: dict[str, Any] = {
        "llm": {
            "endpoints": {name: {"base_url": base_url} for name in config["llm"]["endpoints"]}
        }  # fmt: skip
    }
    sources: dict[str, Any] = {}
    for name, spec in config["sources"].items():
        location = spec["location"]
        if location["kind"] == "hf" and location["repo"] in pins:
            sources[name] = {"location": {"revision": pins[location["repo"]]["commit"]}}
        if location["kind"] == "github":  # a download: the generated files, as a local folder
            path = f"{rehearsal_hub.GITHUB_DIR}/{name}"
            sources[name] = {"location": {"kind": "local", "path": path}}
    if sources:
        overlay["sources"] = sources
    published = {}
    for origin, location in config.get("data", {}).get("published", {}).items():
        if location.get("kind") == "hf" and location["repo"] in pins:
            published[origin] = {"revision": pins[location["repo"]]["commit"]}
    if published:
        overlay["data"] = {"published": published}
    if scale < 1.0:
        mixtures = config["mixtures"]
        overlay["mixtures"] = {
            "size": max(8, round(mixtures["size"] * scale)),
            "validation_size": max(4, round(mixtures["validation_size"] * scale)),
        }
        # the step cap stays config/rehearsal.yaml's 2 below scale 1 too: the study's
        # warmup_ratio (0.05) makes the first step a warmup step at learning rate 0
        # (transformers' warmup starts at 0), so one step would leave the adapter at its
        # initialisation (DoRA's B = 0: every fine-tuned model was the base model)
        # shards only partition the work (progress, resumption): one per 1/16 of the full data,
        # so a small rehearsal pays for 8 translation jobs rather than 128 job start-ups
        shards = config["translation"]["shards"]
        overlay["translation"] = {"shards": max(1, min(shards, round(shards * scale * 16)))}
        # the loss limit is a full-scale rate: with ~15 items in a shard, the server's one sticky
        # invalid reply (~1% at full scale) is already 6.7%, over the study's 5%
        rate = config["translation"]["max_quarantine_rate"]
        overlay["translation"]["max_quarantine_rate"] = max(rate, 0.2)
    # at every scale: the tiny random stand-in model never emits end-of-sequence, so every open
    # question costs the whole generation budget (512 tokens: at full scale 1,004 of predict
    # base's 1,409 s for mediqal-oeq's 4,968 items, and BERTScore then scores 512-token answers;
    # ~60 CPU s per model for 40 released OEQ items at CI scale). Assumed of the real model: it
    # ends most answers at EOS well before 512 tokens, so the study's budget is a cap it rarely
    # reaches; 64 tokens still runs the same generation, stopping and scoring code
    budget = config["prediction"]["max_new_tokens_oeq"]
    overlay["prediction"] = {"max_new_tokens_oeq": min(budget, OEQ_BUDGET)}
    return overlay


def merged(base: dict[str, Any], *overlays: dict[str, Any]) -> dict[str, Any]:
    """The config snakemake sees: later files update nested keys of earlier ones."""
    out = dict(base)
    for overlay in overlays:
        for key, value in overlay.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def built_plan(config: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    """The feasibility plan of the run's config from the records it built; rehearsal_plan.md."""
    from medinjection.plan import plan_draws, render

    draws = plan_draws(config, workdir)
    (workdir / "rehearsal_plan.md").write_text(render(draws) + "\n", encoding="utf-8")
    return [{"what": d.what, "origin": d.origin, "tasks": list(d.tasks), "split": d.split,
             "required": d.required, "expected": round(d.expected, 2), "basis": d.basis,
             "ok": d.ok} for d in draws]  # fmt: skip


def stable_port(workdir: Path) -> int:
    """A port derived from the work directory: the endpoint URL is a rule param, so a new port
    on every run would rerun every LLM job (their answers would still come from the cache)."""
    digest = hashlib.sha256(str(workdir).encode()).digest()
    return 20000 + int.from_bytes(digest[:4], "big") % 30000


def start_server(workdir: Path) -> tuple[subprocess.Popen, str]:
    """The rehearsal server on the work directory's port (else a free one); (process, URL)."""
    for port in (stable_port(workdir), 0):
        log = (workdir / "rehearsal_server.log").open("w")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "rehearsal_server.py"),
             "--files-dir", str(workdir / "llm_files"), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
        )  # fmt: skip
        line = process.stdout.readline() if process.stdout else ""
        if line.startswith("PORT "):
            return process, f"http://127.0.0.1:{int(line.split()[1])}/v1"
        process.kill()
        print(f"rehearsal server could not listen on port {port}; see {log.name}", flush=True)
    raise RuntimeError(f"rehearsal server did not start; see {workdir}/rehearsal_server.log")


def server_stats(base_url: str) -> dict[str, Any]:
    """GET /v1/stats of the server (counters)."""
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/stats", timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


RULE_SCRIPT = re.compile(r"\.([a-z0-9_]+)\.py$")
# rules that run a shell command rather than a script, by the module the command runs: `train`
# starts `python -m medinjection.modeling.launch`, which replaces itself with
# `python -m medinjection.modeling.train` (or torchrun, whose workers run that module), so the
# job's process shows one of the two, as a word of bash's `-c` string or as its own argv
SHELL_RULES = {"medinjection.modeling.launch": "train", "medinjection.modeling.train": "train"}
SHELL_MODULE = re.compile(r"-m\s+(" + "|".join(map(re.escape, SHELL_RULES)) + r")(?![\w.])")


def job_rule(cmdline: list[str]) -> str | None:
    """The rule a snakemake job process runs, from its command line (None: not a job)."""
    for arg in cmdline:
        if match := RULE_SCRIPT.search(arg):
            return match.group(1)
    if match := SHELL_MODULE.search(" ".join(cmdline)):
        return SHELL_RULES[match.group(1)]
    return None


class StageSampler(threading.Thread):
    """Samples snakemake's job processes every `period` s: per rule, peak RSS and CPU seconds.

    Script jobs run as `python .snakemake/scripts/tmpXXXX.<rule>.py`, shell jobs as the command
    of their rule (`job_rule`); a job's children are counted with it. A process's CPU time is
    its last sample's.
    """

    def __init__(self, pid: int, period: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.stop = threading.Event()
        self.rss: dict[str, float] = {}
        self.cpu: dict[tuple[str, int], float] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def run(self) -> None:
        import psutil

        while not self.stop.wait(self.period):
            try:
                jobs = psutil.Process(self.pid).children()
            except psutil.Error:
                return
            for job in jobs:
                try:
                    rule = job_rule(job.cmdline())
                    if rule is None:
                        continue
                    family = [job, *job.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in family) / 2**20
                    for p in family:
                        times = p.cpu_times()
                        self.cpu[(rule, p.pid)] = times.user + times.system
                except psutil.Error:
                    continue
                now = time.time()
                self.rss[rule] = max(self.rss.get(rule, 0.0), rss)
                self.first.setdefault(rule, now)
                self.last[rule] = now

    def stages(self) -> dict[str, dict[str, float]]:
        """rule -> peak RSS (MB, job + children), CPU s (sum over jobs), first-to-last sample s."""
        cpu: dict[str, float] = {}
        for (rule, _), seconds in self.cpu.items():
            cpu[rule] = cpu.get(rule, 0.0) + seconds
        return {rule: {"peak_rss_mb": round(self.rss[rule], 1), "cpu_s": round(cpu.get(rule, 0), 1),
                       "span_s": round(self.last[rule] - self.first[rule], 1)}
                for rule in sorted(self.rss)}  # fmt: skip


def run_snakemake(
    config_path: Path, workdir: Path, cores: int, extra: list[str]
) -> tuple[int, float, dict]:
    """Run the workflow in workdir; (exit code, wall seconds, per-rule figures)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env |= {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(workdir / rehearsal_hub.CACHE),
            "OPENAI_API_KEY": "rehearsal-dummy-key", "GEMINI_API_KEY": "rehearsal-dummy-key",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}  # fmt: skip
    command = [
        str(Path(sys.executable).parent / "snakemake"), *extra, "-s", str(ROOT / "Snakefile"),
        "-d", str(workdir), "--cores", str(cores), "--keep-going",
        # one thread per job (snakemake sets OMP_NUM_THREADS from it), the jobs side by side on
        # the cores: the tiny model's ops are too small to share, and two OpenMP threads on a
        # shared, oversubscribed machine spin on each other (one 64-item OEQ batch of the
        # full-scale rehearsal: 38 s wall with 1 thread, over 600 s with 2, at load ~30 on 2
        # cores). A compute setting of this CPU stand-in: no param or output changes.
        "--max-threads", "1",
        "--configfile", str(config_path.resolve()),
        str(OVERLAY), str(workdir / "rehearsal_runtime.yaml"),
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    start = time.time()
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    sampler = StageSampler(process.pid)
    sampler.start()
    code = process.wait()
    sampler.stop.set()
    sampler.join()
    return code, time.time() - start, sampler.stages()


def job_benchmarks(workdir: Path) -> list[dict[str, Any]]:
    """Per-job wall s, CPU s and max RSS (MB) from snakemake's benchmark files."""
    rows = []
    for path in sorted((workdir / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rows.append({"job": path.relative_to(workdir / "benchmarks").as_posix(),
                             "wall_s": float(row["s"]), "cpu_s": float(row["cpu_time"] or 0),
                             "max_rss_mb": float(row["max_rss"] or 0)})  # fmt: skip
    return rows


def disk_bytes(path: Path) -> int:
    """Bytes of every file under path (0 when absent)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "rehearsal")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--reuse-data", action="store_true", help="keep an existing hub cache")
    parser.add_argument("snakemake_args", nargs="*", help="extra snakemake arguments (after --)")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    results = config["results_dir"]  # the config's own tree, under the work directory
    data_file = workdir / "rehearsal_data.json"
    if args.reuse_data and data_file.exists():
        data = json.loads(data_file.read_text())
    else:
        data = rehearsal_hub.build(args.config, workdir, args.scale)
        # a pinned revision never changes on the Hub, so the workflow rightly keeps what it
        # staged; regenerated rehearsal data must be staged again
        shutil.rmtree(workdir / results / "resources" / "sources", ignore_errors=True)
    # config paths are relative to the working directory, as in a run from the repository: the
    # shipped files the study config names (the judge prompt) are copied in beside the data
    shutil.copytree(ROOT / "config" / "prompts", workdir / "config" / "prompts", dirs_exist_ok=True)
    server, base_url = start_server(workdir)
    try:
        overlay = runtime_overlay(config, base_url, data["pins"], args.scale)
        (workdir / "rehearsal_runtime.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
        code, wall, stages = run_snakemake(args.config, workdir, args.cores, args.snakemake_args)
        stats = server_stats(base_url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    overlays = [yaml.safe_load(OVERLAY.read_text(encoding="utf-8")), overlay]
    plan = built_plan(merged(config, *overlays), workdir)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "config": str(args.config), "scale": args.scale, "exit_code": code,
        "wall_s": round(wall, 1), "data_build_s": data.get("seconds"),
        "cpu_s_children": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb_largest_process": round(usage.ru_maxrss / 1024, 1),
        "load_average": os.getloadavg(),
        "llm_cache_bytes": disk_bytes(workdir / config["llm"]["cache_dir"]),
        "server": stats, "plan": plan, "stages": stages,
        "jobs": job_benchmarks(workdir / results),
    }  # fmt: skip
    (workdir / "rehearsal_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("jobs", "plan")}, indent=2))
    print(f"feasibility plan from the built records: {workdir / 'rehearsal_plan.md'}")
    sys.exit(code)


if __name__ == "__main__":
    main()
