"""The stage layer's rules: a workflow script imports its stage module only (and logging and the
typed settings), no package module imports back into a module that imports it (no import cycle),
and evaluation/ (pure metrics and statistics) never imports the LLM client."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from medinjection.fingerprint import PACKAGE_DIR, imported_names, package_modules

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "workflow" / "scripts"
RULES = ROOT / "workflow" / "rules"
ALWAYS_ALLOWED = ("medinjection.logs", "medinjection.settings")


def stages_of_scripts() -> dict[str, set[str]]:
    """script name -> the stage modules of the rule files that run it (`script: "../scripts/x.py"`
    in workflow/rules/<stage>.smk; stage_source.py serves sources.smk and dataset.smk)."""
    found: dict[str, set[str]] = {}
    for rules in sorted(RULES.glob("*.smk")):
        for script in re.findall(r'"\.\./scripts/(\w+)\.py"', rules.read_text(encoding="utf-8")):
            found.setdefault(script, set()).add(rules.stem)
    return found


def test_each_script_imports_only_its_stage_module() -> None:
    stages = stages_of_scripts()
    assert set(stages) == {path.stem for path in SCRIPTS.glob("*.py")}  # every script is run
    wrong = {}
    for script, stage_names in stages.items():
        tree = ast.parse((SCRIPTS / f"{script}.py").read_text(encoding="utf-8"))
        names = {n for n in imported_names(tree) if n.startswith("medinjection")}
        allowed = {*(f"medinjection.stages.{stage}" for stage in stage_names), *ALWAYS_ALLOWED}
        # `from medinjection.stages.x import name` also yields medinjection.stages.x.name
        extra = {n for n in names if not any(n == a or n.startswith(a + ".") for a in allowed)}
        if extra:
            wrong[script] = sorted(extra)
    assert not wrong


def test_evaluation_never_imports_the_llm_client() -> None:
    # evaluation/ is pure metrics and statistics: a stage wires an LLM judge's chat function in
    modules = package_modules(PACKAGE_DIR)
    wrong = {
        name: sorted(d for d in info.imports if d.startswith("medinjection.llm"))
        for name, info in modules.items()
        if name.startswith("medinjection.evaluation")
    }
    assert {name: deps for name, deps in wrong.items() if deps} == {}


def test_the_package_has_no_import_cycle() -> None:
    modules = package_modules(PACKAGE_DIR)
    graph = {name: {d for d in info.imports if d in modules} for name, info in modules.items()}
    packages = {n for n in graph if any(o.startswith(n + ".") for o in graph)}
    graph = {n: deps - packages for n, deps in graph.items() if n not in packages}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [node, dep]
            if dep not in state and (found := cycle_from(dep, [*path, dep])):
                return found
        state[node] = 2
        return None

    cycles = [c for n in sorted(graph) if n not in state and (c := cycle_from(n, [n]))]
    assert not cycles
