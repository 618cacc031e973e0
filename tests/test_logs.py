"""logs.exit_without_teardown: a finished job ends without the interpreter's teardown, its log
and streams complete, and keeps the normal exit where atexit handlers or finalizers matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.modeling.test_token_lengths import _row, _word_tokenizer
from tests.support.manifests import record_folder

ROOT = Path(__file__).resolve().parents[1]

# A job in miniature: buffered log lines and stdout, an output written and closed, an atexit
# handler (stands for every finalizer os._exit skips), then the call; `{setup}` adds a guard case.
JOB = """
import atexit, logging, multiprocessing, os, sys, threading, time
from pathlib import Path
from medinjection.logs import exit_without_teardown, setup_logging

def pause():
    time.sleep(1.5)

if __name__ == "__main__":
    out = Path(sys.argv[1])
    setup_logging(out / "job.log")
    log = logging.getLogger("medinjection.job")
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    {setup}
    for k in range(2000):
        log.info("line %d", k)
    print("stdout last line")
    (out / "result.txt").write_text("done")
    log.info("job finished")
    exit_without_teardown()
    (out / "returned").write_text("the call returned")
"""


def _run_job(tmp_path: Path, setup: str = "", **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(JOB).replace("{setup}", setup))
    # PYTHONUNBUFFERED would hide a missing flush: stdout to a pipe must stay block-buffered
    unset = ("WORLD_SIZE", "RANK", "MEDINJECTION_NORMAL_EXIT", "PYTHONUNBUFFERED")
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**environ, **env},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_finished_job_skips_teardown_with_log_and_streams_complete(tmp_path):
    done = _run_job(tmp_path)
    assert not (tmp_path / "atexit").exists()  # the interpreter's exit did not run
    assert not (tmp_path / "returned").exists()
    assert (tmp_path / "result.txt").read_text() == "done"
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert len(lines) == 2001 and lines[-1].endswith("medinjection.job: job finished")
    assert done.stdout == "stdout last line\n"  # a pipe: block-buffered until the flush
    assert done.stderr.rstrip().endswith("job finished")


@pytest.mark.parametrize(
    ("setup", "env", "reason"),
    [
        ("", {"WORLD_SIZE": "2"}, "WORLD_SIZE=2 (torchrun/DDP)"),
        ("", {"MEDINJECTION_NORMAL_EXIT": "1"}, "MEDINJECTION_NORMAL_EXIT=1"),
        ("threading.Thread(target=pause, name='writer').start()", {}, "['writer']"),
        ("multiprocessing.Process(target=pause, name='engine').start()", {}, "['engine']"),
    ],
    ids=["ddp", "opt-out", "thread", "child"],
)
def test_normal_exit_where_teardown_matters(tmp_path, setup, env, reason):
    _run_job(tmp_path, setup, **env)
    assert (tmp_path / "returned").exists() and (tmp_path / "atexit").read_text() == "ran"
    log = (tmp_path / "job.log").read_text()
    assert "normal interpreter exit: " in log and reason in log


def test_workflow_script_under_snakemake_writes_its_outputs_and_log(tmp_path):
    """The token_lengths job through Snakemake's `script:`, as the workflow runs it: exit 0,
    the report written, the log complete, and the teardown really skipped."""
    model = _word_tokenizer(tmp_path / "model")
    model_manifest = record_folder(model, "prepare_base_model")
    (tmp_path / "train.jsonl").write_text("\n".join(_row(k, 1) for k in range(1, 6)) + "\n")
    (tmp_path / "validation.jsonl").write_text(_row(3, 2) + "\n")
    script = ROOT / "workflow" / "scripts" / "token_lengths.py"
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            f"""
            rule token_lengths:
                input:
                    model="{model}",
                    model_manifest="{model_manifest}",
                    train="train.jsonl",
                    validation="validation.jsonl",
                output:
                    report="out/token_lengths.json",
                log:
                    "logs/token_lengths.log",
                params:
                    max_length=8,
                script:
                    "{script}"
            """
        )
    )
    # an atexit handler in every Python process of the run: absent marker = teardown skipped
    hook = tmp_path / "hook"
    hook.mkdir()
    marker = tmp_path / "atexit-markers"
    (hook / "sitecustomize.py").write_text(
        "import atexit, os\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n'))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)])}
    env.pop("MEDINJECTION_NORMAL_EXIT", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "--cores", "1", "--quiet", "all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "token_lengths.json").read_text())
    assert report["train"]["sequence"]["n"] == 5 and report["max_length"] == 8
    log = (tmp_path / "logs" / "token_lengths.log").read_text()
    assert "5 train rows" in log and "longer than max_length 8" in log
    # Snakemake's own process exits normally: one marker, the job's process left none
    assert len(marker.read_text().splitlines()) == 1
