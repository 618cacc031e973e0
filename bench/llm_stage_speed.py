"""Speed of the LLM stages against the rehearsal server: one translation shard or synthesis job.

Runs the real stage function (medinjection.stages.translate.translate_shard or
medinjection.stages.synthesize.synthesize) in this process, with the study config's endpoint, batch
settings (poll_s from config/rehearsal.yaml) and submit mode, against a fresh
tools/rehearsal_server.py in its own process and a fresh response cache; prints wall time, the
client's and the server's CPU seconds, items/s, the cache's size on disk and the sha256 of every
output (records, usage report, quarantine file), so two code versions can be compared on the same
inputs.

    python bench/llm_stage_speed.py translate --records R/normalized/medmcqa/records.parquet \
        --shard 0 --shards 16 --out build/bench17/t0 [--profile build/bench17/t0.prof]
    python bench/llm_stage_speed.py synthesize --documents R/normalized/diamed/documents.parquet \
        --source diamed --out build/bench17/s [--profile ...]

Outputs are byte-identical between runs on one --port only: the request keys hash the URL.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def start_server(files_dir: Path, port: int) -> tuple[subprocess.Popen, str]:
    """The rehearsal server on `port`; (process, base_url)."""
    command = [sys.executable, str(ROOT / "tools" / "rehearsal_server.py"),
               "--files-dir", str(files_dir), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"rehearsal server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sha256(path: Path) -> str:
    """sha256 of a file's bytes, or 'absent'."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "absent"


def disk_bytes(path: Path) -> int:
    """Bytes of every file under (or at) path."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["translate", "synthesize"])
    parser.add_argument("--records", type=Path)
    parser.add_argument("--documents", type=Path)
    parser.add_argument("--source", default="diamed")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    # the request keys hash the endpoint URL, and the server's injected failures hash the keys:
    # compare runs on one port
    parser.add_argument("--port", type=int, default=47317)
    parser.add_argument("--profile", type=Path, help="cProfile output of the client (stage)")
    parser.add_argument("--spy-server", type=Path, help="py-spy (collapsed stacks) of the server")
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    overlay = yaml.safe_load((ROOT / "config" / "rehearsal.yaml").read_text(encoding="utf-8"))
    batch = {**config["llm"]["batch"], **overlay["llm"]["batch"]}
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    os.environ["OPENAI_API_KEY"] = "rehearsal-dummy-key"
    server, base_url = start_server(args.out / "server_files", args.port)
    stage = config[{"translate": "translation", "synthesize": "synthesis"}[args.stage]]
    endpoint = {**config["llm"]["endpoints"][stage["endpoint"]], "base_url": base_url}
    price = config["llm"]["prices"][stage["model"]]
    cache = args.out / "cache.sqlite"
    outputs = {"records": args.out / "records.parquet", "usage": args.out / "usage.json",
               "quarantine": args.out / "quarantine.jsonl"}  # fmt: skip
    import logging

    logging.basicConfig(level=logging.WARNING)
    if args.stage == "translate":
        from medinjection.settings import BatchSettings, EndpointSettings, PriceSettings
        from medinjection.stages.translate import translate_shard

        def run() -> None:
            translate_shard(
                args.records, outputs["records"], outputs["usage"], args.shard, args.shards,
                EndpointSettings.from_dict(endpoint), stage["model"], stage["temperature"],
                stage["max_tokens"], "live", None, str(cache), stage["submit"],
                BatchSettings.from_dict(batch), PriceSettings.from_dict(price),
                max_quarantine_rate=stage["max_quarantine_rate"],
                quarantine_path=outputs["quarantine"],
            )  # fmt: skip
    else:
        from medinjection.settings import (
            BatchSettings,
            EndpointSettings,
            PriceSettings,
            SynthesisSettings,
        )
        from medinjection.stages.synthesize import synthesize

        def run() -> None:
            synthesize(
                args.documents, outputs["records"], outputs["usage"], args.source,
                SynthesisSettings.from_dict(stage, "synthesis"),
                EndpointSettings.from_dict(endpoint, "endpoint"), mode="live", replay_file=None,
                cache_path=str(cache), seed=int(config["study"]["seed"]),
                quarantine_path=outputs["quarantine"],
                batch=BatchSettings.from_dict(batch, "llm.batch"),
                price=PriceSettings.from_dict(price, "price"),
            )  # fmt: skip

    spy = None
    if args.spy_server:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                str(server.pid), "--format", "raw", "--rate", "50", "--nonblocking",
                                "-o", str(args.spy_server)], stdout=subprocess.DEVNULL)  # fmt: skip
    server_cpu0 = process_cpu_s(server.pid)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.time()
    try:
        if args.profile:
            cProfile.runctx("run()", globals(), {"run": run}, str(args.profile))
        else:
            run()
        wall = time.time() - start
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = process_cpu_s(server.pid) - server_cpu0
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=60)
        server.terminate()
        server.wait(timeout=30)
    client_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    report = json.loads(outputs["usage"].read_text())
    items = report["counts"].get("records_in") or report["counts"].get("requests")
    result = {
        "stage": args.stage, "items": items, "wall_s": round(wall, 2),
        "client_cpu_s": round(client_cpu, 2), "server_cpu_s": round(server_cpu, 2),
        "items_per_s_wall": round(items / wall, 1),
        "items_per_cpu_s": round(items / (client_cpu + server_cpu), 1),
        "requests_sent": report["usage"].get("requests_sent"),
        "cache_bytes": disk_bytes(cache) + disk_bytes(cache.with_name(cache.stem + "_batches")),
        "cache_sqlite_bytes": disk_bytes(cache),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sha256": {name: sha256(path) for name, path in outputs.items()},
    }  # fmt: skip
    (args.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
