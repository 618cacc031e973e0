"""Pin every Hub source of a config to the commit its branch or tag points to now.

Asks the Hub (network) which commit each unpinned `revision:` of a `kind: hf` location resolves
to, and rewrites those values in the YAML file in place (comments kept; locations must be
written flow-style, `{kind: hf, repo: ..., revision: ...}`, as in config/config.yaml).
Prints what it changed; run it, review the diff, commit the config.

Usage: python tools/pin_sources.py config/config.yaml [--dry-run]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from medinjection.sources.fetch import is_commit_sha
from medinjection.sources.pins import hub_locations, pin_config_text, resolve_revision


def main(argv: list[str] | None = None) -> None:
    """Resolve and write the pins."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args(argv)
    text = args.config.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    for mode in ("sources", "published"):
        config.setdefault("data", {})["build"] = mode  # pin both entry points
        pins, revisions = {}, {}
        for key, location in sorted(hub_locations(config).items()):
            revision = str(location["revision"])
            if is_commit_sha(revision):
                continue
            repo = location["repo"]
            pins[repo] = resolve_revision(repo, revision, location.get("repo_type", "dataset"))
            revisions[repo] = revision
            print(f"{key}: {repo}@{revision} -> {pins[repo]}")
        text = pin_config_text(text, pins, revisions)
    if args.dry_run:
        print("(dry run: nothing written)")
    else:
        args.config.write_text(text, encoding="utf-8")
        print(f"wrote {args.config}")


if __name__ == "__main__":
    main()
