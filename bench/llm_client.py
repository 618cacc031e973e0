"""Benchmark of the LLM client against the local fake OpenAI server (200 ms latency, rate limit).

Prints, side by side: the time 2,000 requests take against the bound set by concurrency and the
server's rate limit (target bound/measured >= 0.90);
requests a repeated run sends (target 0); and a run SIGKILLed halfway then restarted (target:
2,000 distinct requests in all, only the in-flight ones at the kill sent twice). The bound credits
the client's one-second burst allowance (medinjection.llm.ratelimit.BURST_S):
bound = max(N x latency / concurrency, (N - rate x BURST_S) / rate + latency).

Usage: python bench/llm_client.py [--n 2000] [--latency 0.2]
The fake server runs in its own process (tests/support/fake_openai_server.py) and so does each
client run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = "BENCH_FAKE_KEY"
# (concurrency, server rate limit in requests/s): one rate-bound and one concurrency-bound case
CASES = ((32, 100.0), (16, 200.0))


def start_server(latency: float, rps: float) -> tuple[subprocess.Popen, str]:
    """The fake server in its own process; (process, base_url)."""
    command = [sys.executable, "-m", "tests.support.fake_openai_server", "--latency", str(latency),
               "--rps", str(rps), "--burst", "2"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=_env())
    port = proc.stdout.readline().split()[1]
    return proc, f"http://127.0.0.1:{port}/v1"


def stats(base_url: str) -> dict:
    """The server's counters."""
    with urllib.request.urlopen(base_url + "/stats", timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _env() -> dict[str, str]:
    return {**os.environ, ENV: "sk-bench", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}


def client_command(base_url: str, cache: Path, n: int, concurrency: int, rps: float) -> list[str]:
    """The command of one client run (this file with --worker)."""
    return [sys.executable, __file__, "--worker", "--url", base_url, "--cache", str(cache),
            "--n", str(n), "--concurrency", str(concurrency), "--rps", str(rps)]  # fmt: skip


def worker(args: argparse.Namespace) -> None:
    """One client run: n distinct requests; prints its wall time and usage as JSON."""
    from medinjection.llm.client import ChatRequest, open_client

    endpoint = {
        "base_url": args.url,
        "api_key_env": ENV,
        "max_concurrency": args.concurrency,
        "requests_per_minute": int(args.rps * 60),
        "tokens_per_minute": 10**9,
        "max_retries": 8,
        "timeout_s": 30,
    }
    requests = [
        ChatRequest("bench", ({"role": "user", "content": f"request {i}"},), {"max_tokens": 8})
        for i in range(args.n)
    ]
    with open_client(endpoint, "live", None, args.cache) as client:
        start = time.perf_counter()
        client.complete_many(requests)
        wall = time.perf_counter() - start
        print(json.dumps({"wall_s": wall, **client.usage.as_dict()}), flush=True)


def run_client(base_url: str, cache: Path, n: int, concurrency: int, rps: float) -> dict:
    """Run a client to completion; its printed report."""
    done = subprocess.run(client_command(base_url, cache, n, concurrency, rps), env=_env(),
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput_case(n: int, latency: float, concurrency: int, rps: float, tmp: Path) -> None:
    """Measured vs bound, then the same run repeated."""
    server, url = start_server(latency, rps)
    try:
        cache = tmp / f"c{concurrency}_{int(rps)}.sqlite"
        first = run_client(url, cache, n, concurrency, rps)
        sent_first = stats(url)
        again = run_client(url, cache, n, concurrency, rps)
        sent_again = stats(url)["total"] - sent_first["total"]
    finally:
        server.kill()
    from medinjection.llm.ratelimit import BURST_S

    bound = max(n * latency / concurrency, (n - rps * BURST_S) / rps + latency)
    print(f"concurrency {concurrency:>3}, server limit {rps:>5.0f}/s, latency {latency:.2f} s: "
          f"{n} requests in {first['wall_s']:6.2f} s, bound {bound:6.2f} s, "
          f"bound/measured = {bound / first['wall_s']:.3f}; server saw {sent_first['total']} "
          f"requests ({sent_first['statuses']}); repeated run sent {sent_again} "
          f"(cache hits {again['cache_hits']}) in {again['wall_s']:.2f} s")  # fmt: skip


def kill_case(n: int, latency: float, concurrency: int, rps: float, tmp: Path) -> None:
    """SIGKILL a run when the server has seen half the requests, rerun, count what was sent."""
    server, url = start_server(latency, rps)
    try:
        cache = tmp / "killed.sqlite"
        command = client_command(url, cache, n, concurrency, rps)
        proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL)
        while stats(url)["total"] < n // 2 and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = stats(url)["total"]
        rerun = run_client(url, cache, n, concurrency, rps)
        after = stats(url)
    finally:
        server.kill()
    print(f"kill -9 at {before} requests sent; restart sent {rerun['requests_sent']} "
          f"(cache hits {rerun['cache_hits']}); server: {after['unique']} distinct requests, "
          f"{after['total']} in all ({after['total'] - after['unique']} sent twice: in flight at "
          f"the kill, at most 2 x concurrency = {2 * concurrency})")  # fmt: skip


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--rps", type=float, default=100.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench_llm_") as tmp:
        for concurrency, rps in CASES:
            throughput_case(args.n, args.latency, concurrency, rps, Path(tmp))
        kill_case(args.n, args.latency, *CASES[0], Path(tmp))


if __name__ == "__main__":
    main()
