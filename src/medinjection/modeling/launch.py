"""Launch the training CLI on the job's GPUs (`python -m medinjection.modeling.launch`).

One device (or CPU): plain `python -m medinjection.modeling.train`. Several GPUs: torchrun
(`python -m torch.distributed.run`, the same interpreter) with one worker per GPU on this node.
Jobs share nodes, so the rendezvous port is derived from the SLURM job id: two training jobs on
one node get different ports, and a requeued job (same id) gets its own port back. Outside SLURM
a free port is asked of the OS. DDP or DeepSpeed is chosen by the rendered training config
(`deepspeed` key), not here: the launcher is the same for both.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from collections.abc import Mapping, Sequence

TRAIN_MODULE = "medinjection.modeling.train"
# Below Linux's ephemeral range (32768-60999), so an outgoing connection never holds the port.
PORT_BASE = 10_000
PORT_SPAN = 20_000


def rendezvous_port(job_id: str) -> int:
    """TCP port of the job's rendezvous, derived from its SLURM job id."""
    digits = job_id.split("_")[0]  # array jobs may show "<array id>_<task>"
    if not digits.isdigit():
        raise ValueError(f"SLURM_JOB_ID {job_id!r} is not a job number")
    return PORT_BASE + int(digits) % PORT_SPAN


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_argv(
    gpus: int, train_args: Sequence[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """The argv that runs the training CLI with `train_args` on `gpus` local GPUs."""
    if gpus < 0:
        raise ValueError(f"compute.train.gpus must be >= 0, got {gpus}")
    # the GPU count is the job's resource, not in the training config: the CLI checks it
    train_args = [*train_args, "--gpus", str(gpus)]
    if gpus <= 1:
        return [sys.executable, "-m", TRAIN_MODULE, *train_args]
    environ = os.environ if environ is None else environ
    job_id = environ.get("SLURM_JOB_ID")
    port = rendezvous_port(job_id) if job_id else _free_port()
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc-per-node={gpus}",
        "--master-addr=127.0.0.1",
        f"--master-port={port}",
        "-m",
        TRAIN_MODULE,
        *train_args,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `--gpus N -- <train args>` and replace this process with the launch command."""
    parser = argparse.ArgumentParser(prog="python -m medinjection.modeling.launch")
    parser.add_argument("--gpus", type=int, required=True, help="GPUs of this job (0 = CPU)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the train CLI args")
    args = parser.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    command = launch_argv(args.gpus, train_args)
    print(f"launch: {shlex.join(command)}", file=sys.stderr, flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
