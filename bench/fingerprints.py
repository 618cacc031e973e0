"""CPU time of the code fingerprints of every rule (what Snakemake computes on each parse).

Usage: python bench/fingerprints.py [--repeat N]   (run in the venv). The figure was ~0.4 s of CPU
when it was a test assert (tests/test_fingerprint.py); timings belong here, not in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from medinjection.fingerprint import (
    clear_caches,
    module_fingerprint,
    parse_module,
    script_fingerprint,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def one_pass() -> float:
    """CPU seconds of one cold pass over every script plus the training launcher."""
    clear_caches()
    parse_module.cache_clear()
    start = time.process_time()  # CPU: a loaded machine's waits do not count
    for script in sorted(SCRIPTS.glob("*.py")):
        script_fingerprint(script)
    module_fingerprint("medinjection.modeling.launch")
    return time.process_time() - start


def main() -> None:
    """Print the CPU time of each pass and their median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times = [one_pass() for _ in range(args.repeat)]
    print(" ".join(f"{t:.3f}" for t in times), f"median {statistics.median(times):.3f} s CPU")


if __name__ == "__main__":
    main()
