"""Launcher command for the training CLI: plain python on one device, torchrun on several GPUs."""

from __future__ import annotations


def launcher_command(gpus: int) -> str:
    """Command prefix placed before `-m medinjection.modeling.train` in the train rule.

    Several GPUs use `torchrun --standalone`: it runs a local rendezvous on a free port, so
    concurrent training jobs on one node (several mixtures, SLURM array jobs) do not collide on a
    fixed MASTER_PORT, and no rendezvous endpoint has to be configured per job.
    """
    if gpus < 0:
        raise ValueError(f"training.gpus must be >= 0, got {gpus}")
    if gpus <= 1:
        return "python"
    return f"torchrun --standalone --nnodes=1 --nproc-per-node={gpus}"
