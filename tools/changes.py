"""What a change will rerun, and why, before running it (`make changes`).

Runs `snakemake -n` with the given arguments (e.g. `--configfile config/demo.yaml`) and prints
one line per rule: how many of its jobs would run and their reasons, where "params" covers both
config values and the rule's `code` fingerprint (the package definitions its script can reach,
see medinjection.fingerprint) and "after <rules>" names the upstream rules whose jobs rerun first.

    python tools/changes.py --configfile config/demo.yaml
    # the workflow scripts (rules) whose code fingerprint covers some definition of a module:
    python tools/changes.py --covers src/medinjection/evaluation/metrics.py
    # ... or one top-level name of it (a function, a class, a constant):
    python tools/changes.py --covers src/medinjection/stages/train.py:merge_adapter
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# snakemake's reason texts -> short words
REASONS = {
    "Missing output files": "missing output",
    "Params have changed since last execution": "params",
    "Code has changed since last execution": "code",
    "Set of input files has changed since last execution": "input set",
    "Input files updated by another job": "after",
    "Updated input files": "newer input",
    "Forced execution": "forced",
    "Software environment definition has changed since last execution": "software env",
    "No metadata": "no metadata",
    "Rules with neither input nor output files are always executed": "always",
    "Rules with a run or shell declaration but no output are always executed": "always",
}


def parse_jobs(dry_run: str) -> list[tuple[str, str]]:
    """(rule, reason line) of every job block of a `snakemake -n` output."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:\n)", dry_run):
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):\n", block)
        if head:
            reason = re.search(r"^\s+reason: (.*)$", block, re.M)
            jobs.append((head.group(1), reason.group(1) if reason else ""))
    return jobs


FINGERPRINT = re.compile(r"'[0-9a-f]{16}'")


def _params(detail: str) -> str:
    """'params' with what changed: the code fingerprint, or the values before and now."""
    match = re.search(r"before: (.*?) now: (.*?)\s*$", detail)
    if not match:
        return "params"
    before, now = match.groups()
    if FINGERPRINT.fullmatch(before.strip()) and FINGERPRINT.fullmatch(now.strip()):
        return "package code it reaches"
    shown = f"params: {before.strip()} -> {now.strip()}"
    return shown if len(shown) <= 90 else shown[:87] + "..."


def _short(reason: str, producers: dict[str, str]) -> list[str]:
    words = []
    for part in reason.split("; "):
        text, _, detail = part.partition(": ")
        word = REASONS.get(text.strip(), text.strip())
        if word == "after":
            rules = sorted({producers.get(f.strip(), "?") for f in detail.split(", ")})
            word = "after " + ", ".join(rules)
        elif word == "params":
            word = _params(detail)
        words.append(word)
    return words


def _producers(dry_run: str) -> dict[str, str]:
    """Output file -> rule of the job that writes it."""
    out = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:\n)", dry_run):
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):\n", block)
        output = re.search(r"^\s+output: (.*)$", block, re.M)
        if head and output:
            for path in output.group(1).split(", "):
                out[path.strip()] = head.group(1)
    return out


def summary(dry_run: str) -> str:
    """One line per rule: jobs that would run and why (the reasons counted over its jobs)."""
    if "Nothing to be done" in dry_run:
        return "Nothing to be done: every output is up to date."
    jobs = parse_jobs(dry_run)
    producers = _producers(dry_run)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for rule, reason in jobs:
        reasons[rule].update(_short(reason, producers))
    width = max(len(rule) for rule in reasons)
    lines = [f"{len(jobs)} jobs would run:", f"{'rule':<{width}}  jobs  why"]
    for rule, counts in reasons.items():
        n = sum(1 for name, _ in jobs if name == rule)
        why = "; ".join(f"{word} ({c})" if c != n else word for word, c in counts.items())
        lines.append(f"{rule:<{width}}  {n:>4}  {why}")
    return "\n".join(lines)


def _launcher() -> str:
    return "train (python -m medinjection.modeling.launch)"


def _reach(module_file: Path) -> tuple[str, list[tuple[str, frozenset]], dict[str, frozenset]]:
    """(module, its nodes as (label, node ids), the nodes each script or the launcher reaches)."""
    from medinjection.fingerprint import clear_caches, module_nodes, package_modules, script_nodes

    package = REPO / "src" / "medinjection"
    module = ".".join(module_file.resolve().relative_to(package.parent).with_suffix("").parts)
    module = module.removesuffix(".__init__")
    clear_caches()
    modules = package_modules(package)
    if module not in modules:
        raise SystemExit(f"{module_file} is not a module of {package}")
    info = modules[module]
    labels = [
        (", ".join(sorted(node.binds)) or f"line {node.line}", frozenset({(module, index)}))
        for index, node in enumerate(info.statements)
    ]
    reached = {
        script.name: script_nodes(script, package)
        for script in sorted((REPO / "workflow" / "scripts").glob("*.py"))
    }
    reached[_launcher()] = module_nodes("medinjection.modeling.launch", package)
    return module, labels, reached


def covering_rules(module_file: Path, name: str | None = None) -> list[str]:
    """Workflow scripts (and so rules) whose code fingerprint covers a package module file: one of
    its top-level statements, or with `name` one of those that bind that name."""
    module, labels, reached = _reach(module_file)
    edited: set = set()
    for label, nodes in labels:
        if name is None or name in label.split(", "):
            edited |= nodes
    if not edited:
        raise SystemExit(f"{module_file} binds no top-level name {name!r}")
    return [rule for rule, nodes in reached.items() if edited & nodes]


def covering_by_name(module_file: Path) -> list[tuple[list[str], list[str]]]:
    """The module's top-level names grouped by the rules their edit reaches: (names, rules)."""
    _, labels, reached = _reach(module_file)
    groups: dict[tuple[str, ...], list[str]] = {}
    for label, nodes in labels:
        rules = tuple(rule for rule, reach in reached.items() if nodes & reach)
        groups.setdefault(rules, []).append(label)
    return [(names, list(rules)) for rules, names in sorted(groups.items(), key=lambda g: g[0])]


def main(argv: list[str] | None = None) -> None:
    """CLI: summarise `snakemake -n <args>`, or list the scripts a module's edit reaches."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--covers",
        metavar="MODULE_FILE[:NAME]",
        help="a package module file, or one top-level name of it: which rules' code covers it",
    )
    parser.add_argument(
        "--by-name", action="store_true", help="with --covers FILE: the rules of each name of it"
    )
    args, snakemake_args = parser.parse_known_args(argv)
    if args.covers and args.by_name:
        for names, rules in covering_by_name(Path(args.covers)):
            print(f"{', '.join(names)}\n    -> {' '.join(rules) or 'no rule'}")
        return
    if args.covers:
        path, _, name = args.covers.partition(":")
        hits = covering_rules(Path(path), name or None)
        print("\n".join(hits) or "no workflow script reaches it")
        return
    command = [str(Path(sys.executable).with_name("snakemake")), "-n", *snakemake_args]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    print(summary(proc.stdout + proc.stderr))


if __name__ == "__main__":
    main()
