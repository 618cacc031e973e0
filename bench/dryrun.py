"""Time the full-study dry run (config/config.yaml) and print its job count per rule.

Usage: python bench/dryrun.py [--repeat N]   (run from the repository root, in the venv)
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dry_run() -> tuple[float, str]:
    """One dry run of the study graph: (seconds, output)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "-n", "--quiet", "rules"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times, output = [], ""
    for _ in range(args.repeat):
        seconds, output = dry_run()
        times.append(seconds)
    table = re.search(r"Job stats:\n(.*?total\s+\d+)", output, re.S)
    print(table.group(1) if table else output[-2000:])
    print(
        f"full-study dry run: median {statistics.median(times):.2f}s, "
        f"min {min(times):.2f}s, max {max(times):.2f}s over {len(times)} runs"
    )


if __name__ == "__main__":
    main()
