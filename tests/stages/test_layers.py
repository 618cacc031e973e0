"""The stage layer's two rules: a workflow script imports its stage module only (and logging), and
no package module imports back into a module that imports it (no import cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

from medinjection.fingerprint import PACKAGE_DIR, imported_names, package_modules

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"
# the scripts of workflow/rules/{train,predict,position_bias,judge,score,report}.smk -> their stage
STAGE_OF = {
    "prepare_base_model": "train", "render_train_config": "train", "token_lengths": "train",
    "merge_adapter": "train", "predict": "predict", "position_bias": "position_bias",
    "position_bias_table": "position_bias", "judge": "judge", "stage_annotations": "judge",
    "metaeval": "judge", "score": "score", "significance": "report", "table1": "report",
    "plot_table1": "report", "plot_per_dataset": "report", "plot_judge_length": "report",
}  # fmt: skip


def test_each_script_imports_only_its_stage_module() -> None:
    wrong = {}
    for script, stage in STAGE_OF.items():
        tree = ast.parse((SCRIPTS / f"{script}.py").read_text(encoding="utf-8"))
        names = {n for n in imported_names(tree) if n.startswith("medinjection")}
        allowed = {f"medinjection.stages.{stage}", "medinjection.logs"}
        # `from medinjection.stages.x import name` also yields medinjection.stages.x.name
        extra = {n for n in names if not any(n == a or n.startswith(a + ".") for a in allowed)}
        if extra:
            wrong[script] = sorted(extra)
    assert not wrong


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
