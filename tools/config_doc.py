"""Render config/README.md from the config JSON schema (descriptions are the single source)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
README = ROOT / "config/README.md"
HEADER = """# Configuration keys

Generated from `workflow/schemas/config.schema.yaml` by `python tools/config_doc.py` (a test checks
it is current). `config/config.yaml` is the real study (the authors' settings where known; the
differences are in docs/deviations.md), `config/demo.yaml` the embedded demo. Unknown keys and
wrong types stop the run before any job starts, naming the key.
Use your own file with `snakemake --configfile my.yaml` (it replaces config/config.yaml entirely).

| key | type | meaning |
|---|---|---|
"""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        target = dict(defs[ref.split("/")[-1]])
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "object")
    if "enum" in node:
        return f"{kind}: " + " / ".join(f"`{v}`" for v in node["enum"])
    return str(kind)


def _rows(node: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    node = _resolve(node, defs)
    rows = []
    if prefix:
        text = " ".join(str(node.get("description", "")).split())
        rows.append(f"| `{prefix}` | {_type(node)} | {text} |")
    for name, child in node.get("properties", {}).items():
        rows.extend(_rows(child, defs, f"{prefix}.{name}" if prefix else name))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        rows.extend(_rows(extra, defs, f"{prefix}.<name>"))
    return rows


def render() -> str:
    """The README text for the current schema."""
    schema = yaml.safe_load(SCHEMA.read_text())
    return HEADER + "\n".join(_rows(schema, schema.get("$defs", {}), "")) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if README.read_text() == render() else 1)
    README.write_text(render())
