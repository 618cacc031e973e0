"""Per-rule code fingerprints: a hash of the package modules a rule's script can run.

A rule's `code` param is the fingerprint of the modules its script imports, transitively, found
by static analysis (no import is executed). Each module counts by its syntax tree with docstrings
removed, so comments, docstrings and formatting change nothing; an edit of a module changes only
the fingerprints of the rules that can reach it. Importing `a.b.c` also runs the `__init__` of
`a` and `a.b`, so parent packages count too. A string constant that names a package module
(`importlib.import_module("medinjection.llm.client")`, `python -m medinjection.modeling.train`)
counts as an import of it.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "medinjection"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModuleInfo:
    """One package module: its normalised source hash and the package modules it imports."""

    name: str
    digest: str
    imports: frozenset[str]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                # keep the body non-empty: a `pass` hashes the same whatever the docstring said
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_digest(source: str, filename: str = "<source>") -> str:
    """SHA-256 of the module's syntax tree without docstrings (comments/formatting don't count)."""
    tree = _strip_docstrings(ast.parse(source, filename=filename))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    if not node.level:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_names(tree: ast.AST, module: str = "", is_package: bool = False) -> set[str]:
    """Dotted names a module may import: import statements (anywhere) and string constants."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(node, module, is_package)
            if target:
                names.add(target)
                # `from pkg import sub` imports the submodule when `sub` is one
                names.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(f"{PACKAGE}."):
                names.add(node.value)
    return names


def _package_deps(names: Iterable[str], known: Iterable[str]) -> frozenset[str]:
    """The package modules `names` run when imported: each one and its parent packages."""
    known = set(known)
    deps = set()
    for name in names:
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in known:
                deps.add(prefix)
    return frozenset(deps)


@cache
def package_modules(root: Path = PACKAGE_DIR) -> dict[str, ModuleInfo]:
    """Every module of the package under `root` with its digest and direct package imports."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        sources[_module_name(path, root)] = path
    modules = {}
    for name, path in sources.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        names = imported_names(tree, name, path.name == "__init__.py")
        modules[name] = ModuleInfo(
            name=name,
            digest=normalised_digest(source, str(path)),
            imports=_package_deps(names, sources) - {name},
        )
    return modules


def closure(roots: Iterable[str], modules: dict[str, ModuleInfo]) -> list[str]:
    """The package modules reachable from `roots` (sorted), roots included."""
    seen: set[str] = set()
    stack = list(_package_deps(roots, modules))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(modules[name].imports - seen)
    return sorted(seen)


def _digest(names: list[str], modules: dict[str, ModuleInfo]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}:{modules[name].digest}\n".encode())
    return digest.hexdigest()[:16]


@cache
def script_fingerprint(script: Path, root: Path = PACKAGE_DIR) -> str:
    """Fingerprint of the package code a workflow script imports (transitively)."""
    script = Path(script)
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    modules = package_modules(root)
    names = closure(imported_names(tree), modules)
    if not names:
        raise ValueError(f"{script}: imports no {PACKAGE} module; give the rule no code param")
    return _digest(names, modules)


@cache
def module_fingerprint(module: str, root: Path = PACKAGE_DIR) -> str:
    """Fingerprint of a package module run as `python -m <module>` (shell rules)."""
    modules = package_modules(root)
    if module not in modules:
        raise ValueError(f"{module!r} is not a module of {root} (known: {sorted(modules)})")
    return _digest(closure([module], modules), modules)
