"""Per-rule code fingerprints: a hash of the package code a rule's script can run.

A rule's `code` param is the fingerprint of the top-level definitions of the package that its
workflow script can reach, found by static analysis (no import is executed). The nodes are the
top-level statements of each module (an import statement: one node per imported name); a node
depends on the names it uses anywhere inside it (bodies, decorators, defaults, annotations, and
string annotations), resolved to the statements that bind them: a local top-level name, a name
imported from a package module (`from medinjection.x import f`: the statements binding `f` in x),
a module attribute (`metrics.exact_match`, `medinjection.__version__`). Each node counts by its
syntax tree with docstrings removed, so comments, docstrings and formatting change nothing, and an
edit of a definition changes only the fingerprints of the rules that can reach it.

Where the analysis cannot see which names are used, it takes the whole module (every statement):
a bare use of a module (`getattr(metrics, name)`, passing it around), a string constant naming a
package module (`importlib.import_module("medinjection.llm.client")`, `python -m
medinjection.modeling.train`; a string ending in "." stands for every module below it), `from x
import *`, `globals()`, `sys.modules`, a name the module does not bind (its `__getattr__` then);
an `importlib.import_module`/`__import__` of a computed name takes the whole package.

Importing a module runs all of its top-level code, whoever uses which name: the statements that
may change state when they run (a statement that binds no name, a compound statement, an
assignment to an attribute or item, a call or a decorator of a package function at import time,
an import of another library that its module never uses, `from __future__`) count for every
script that imports their module, directly or not, or one of its sub-modules (a package's
`__init__` runs first). `if __name__ == "__main__":` blocks count only where the module is run by
name (a string, or `module_fingerprint`). Building an instance of a plain record class of the
module (no `__init__`, `__new__` or `__post_init__`: a dataclass constant) is not a state change.

Not seen (keep such code out of the package, or make it visible): package code that another
library calls at import time when handed a function (`map(register, ...)` at the top level),
module names computed from parts that are not string constants, and code reached only through
objects unpickled from files.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

PACKAGE = "medinjection"
PACKAGE_DIR = Path(__file__).resolve().parent
# names whose use reads a module's namespace as a whole
NAMESPACE_READERS = frozenset({"globals", "eval", "exec", "__import__"})
SCRIPT = "__script__"  # the pseudo-module of a workflow script's own statements
# what the graph walk visits: ("node", module, index); ("local", module, name, chain), a name used
# in a module with its attribute chain; ("sym", module, name, chain), a name of a module used
# from outside it; ("whole", module); ("string", text) naming a module; ("prefix", text)
Target = tuple[Any, ...]
NodeId = tuple[str, int]
COMPOUND = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.TryStar,
    ast.Match,
)  # fmt: skip
TYPE_TEXT = re.compile(r"\s*[A-Za-z_][\w.\[\], |]*\s*$")  # what a string annotation looks like
TYPE_SYNTAX = (
    ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.BitOr, ast.Tuple, ast.List,
    ast.Constant, ast.Load, ast.Expression,
)  # fmt: skip


@dataclass(frozen=True)
class Statement:
    """One node: a top-level statement, or one name of a top-level import statement."""

    digest: str
    binds: frozenset[str]
    effect: bool  # counts whenever its module is imported
    deps: tuple[Target, ...] = ()
    # an import of the package: ("sym", module, name) or ("module", module)
    target: tuple[str, ...] | None = None
    line: int = 0


@dataclass(frozen=True)
class ModuleInfo:
    """One package module: its normalised source hash, direct package imports and statements."""

    name: str
    digest: str
    imports: frozenset[str]
    statements: tuple[Statement, ...] = ()
    bindings: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def _strip_docstrings_of(
    node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef,
) -> None:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        # keep the body non-empty: a `pass` hashes the same whatever the docstring said
        node.body = body[1:] or [ast.Pass()]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            _strip_docstrings_of(node)
    return tree


def _dump(node: ast.AST) -> str:
    return hashlib.sha256(ast.dump(node, annotate_fields=False).encode()).hexdigest()


def normalised_digest(source: str, filename: str = "<source>") -> str:
    """SHA-256 of the module's syntax tree without docstrings (comments/formatting don't count)."""
    return _dump(_strip_docstrings(ast.parse(source, filename=filename)))


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


def _in_package(name: str | None) -> bool:
    return bool(name) and (name == PACKAGE or str(name).startswith(PACKAGE + "."))


def imported_names(tree: ast.AST, module: str = "", is_package: bool = False) -> set[str]:
    """Dotted names a module may import: import statements (anywhere) and string constants."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(_import_names(node, module, is_package))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(f"{PACKAGE}."):
                names.add(node.value)
    return names


def _import_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    target = _resolve_from(node, module, is_package)
    if not target:
        return set()
    # `from pkg import sub` imports the submodule when `sub` is one
    return {target, *(f"{target}.{alias.name}" for alias in node.names)}


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
        if name.endswith("."):  # a string prefix of computed module names: all below it
            deps.update(k for k in known if k.startswith(name))
    return frozenset(deps)


# ---------------------------------------------------------------- statements of a module


def _is_main_block(stmt: ast.stmt) -> bool:
    test = stmt.test if isinstance(stmt, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _chain(node: ast.Attribute) -> tuple[str, tuple[str, ...]] | None:
    """`a.b.c` -> ("a", ("b", "c")); None when the chain does not start at a name."""
    attrs = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.append(current.attr)
        current = current.value
    if isinstance(current, ast.Name):
        return current.id, tuple(reversed(attrs))
    return None


def _type_names(text: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Names of a string that reads as a type or a dotted name (a forward reference)."""
    if len(text) > 200 or not TYPE_TEXT.match(text):
        return
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return
    nodes = list(ast.walk(tree))
    if not all(isinstance(n, TYPE_SYNTAX) for n in nodes):
        return
    for node in nodes:
        if isinstance(node, ast.Attribute) and (chain := _chain(node)):
            yield chain
        elif isinstance(node, ast.Name):
            yield node.id, ()


@dataclass
class _Uses:
    """What one statement uses: names with their attribute chains, strings, nested imports."""

    names: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    imports: list[ast.Import | ast.ImportFrom] = field(default_factory=list)
    dynamic_import: bool = False
    reads_namespace: bool = False

    def visit(self, root: ast.AST) -> None:
        """Collect the uses of `root` and everything inside it."""
        stack = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Attribute) and (chain := _chain(node)):
                self.names.add(chain)  # the whole chain, not the name alone: no child visited
                self.reads_namespace |= chain[0] == "sys" and chain[1][:1] == ("modules",)
                continue
            if isinstance(node, ast.Name):
                self.names.add((node.id, ()))
                self.reads_namespace |= node.id in NAMESPACE_READERS
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.strings.add(node.value)
                self.names.update(_type_names(node.value))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                self.imports.append(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                _strip_docstrings_of(node)
            stack.extend(ast.iter_child_nodes(node))

    def _call(self, node: ast.Call) -> None:
        func = node.func
        callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        self.reads_namespace |= callee == "vars" and not node.args
        if callee in ("import_module", "__import__") and not (
            node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            self.dynamic_import = True


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Names a top-level statement binds in its module (not inside functions or classes)."""
    names: set[str] = set()

    def walk(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            return
        if isinstance(node, ast.Lambda | ast.comprehension):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(stmt)
    return names


def _import_time(stmt: ast.stmt) -> Iterator[ast.AST]:
    """The parts of a statement that run when its module is imported (not function bodies)."""
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend([*node.decorator_list, node.args])
            stack.extend([node.returns] if node.returns else [])
        elif not isinstance(node, ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _changes_state(
    stmt: ast.stmt, package_names: set[str], records: set[str], plain: set[str]
) -> bool:
    """Whether running the statement may change state beyond the names it binds: it assigns an
    attribute or an item, calls (or decorates with) package code other than building one of the
    `records` classes, or derives a class from a package class that is not `plain`."""
    for node in _import_time(stmt):
        if isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.Call) and _root_name(node.func) in package_names - records:
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if any(_root_name(d) in package_names for d in node.decorator_list):
                return True
        if isinstance(node, ast.ClassDef):
            outside = [*node.bases, *(k.value for k in node.keywords)]
            if any(_root_name(e) in package_names - plain for e in outside):
                return True
    return False


def _pure_classes(tree: ast.Module, package_names: set[str], hooks: frozenset[str]) -> set[str]:
    """Classes of the module that define none of the methods `hooks`, with no package decorator,
    metaclass or base but other such classes: with the hooks of construction (`__init__`,
    `__new__`, `__post_init__`), a plain or dataclass record, building one at import time changes
    nothing else; with `__init_subclass__`, deriving one at import time changes nothing else."""
    classes = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef)}
    pure: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, cls in classes.items():
            if name in pure:
                continue
            methods = {s.name for s in cls.body if isinstance(s, ast.FunctionDef)}
            outside = [*cls.decorator_list, *cls.bases, *(k.value for k in cls.keywords)]
            if not methods & hooks and all(
                _root_name(e) not in package_names - pure for e in outside
            ):
                pure.add(name)
                changed = True
    return pure


def _import_nodes(
    stmt: ast.Import | ast.ImportFrom, module: str, is_package: bool, used: set[str]
) -> Iterator[Statement]:
    """One node per imported name; a star import is one node that takes the whole module and
    counts wherever its module runs (the names it binds are not known here)."""
    source = _resolve_from(stmt, module, is_package) if isinstance(stmt, ast.ImportFrom) else None
    for alias in stmt.names:
        if isinstance(stmt, ast.ImportFrom):
            single: ast.stmt = ast.ImportFrom(module=stmt.module, names=[alias], level=stmt.level)
            if alias.name == "*":
                deps: tuple[Target, ...] = (("whole", source),) if _in_package(source) else ()
                yield Statement(_dump(single), frozenset(), True, deps, None, stmt.lineno)
                continue
            bound = alias.asname or alias.name
            target: tuple[str, ...] | None = (
                ("sym", str(source), alias.name) if _in_package(source) else None
            )
            future = source == "__future__"
        else:
            single = ast.Import(names=[alias])
            bound = alias.asname or alias.name.split(".")[0]
            imported = alias.name if alias.asname else bound
            target = ("module", imported) if _in_package(alias.name) else None
            future = False
        # an import of another library that its module never uses is there for what importing
        # it does (a plugin registering itself): it counts whenever the module runs
        effect = future or (target is None and bound not in used)
        yield Statement(_dump(single), frozenset({bound}), effect, (), target, stmt.lineno)


def _statement_deps(uses: _Uses, module: str, is_package: bool) -> tuple[Target, ...]:
    deps: list[Target] = [("local", module, name, chain) for name, chain in sorted(uses.names)]
    for node in uses.imports:  # imports inside functions: no attribute tracking there
        if isinstance(node, ast.Import):
            deps.extend(("whole", a.name) for a in node.names if _in_package(a.name))
        else:
            source = _resolve_from(node, module, is_package)
            if _in_package(source):
                deps.extend(("sym", str(source), a.name, ()) for a in node.names)
    for text in sorted(uses.strings):
        if text.startswith(PACKAGE + "."):
            deps.append(("prefix", text) if text.endswith(".") else ("string", text))
    if uses.reads_namespace:
        deps.append(("whole", module))
    if uses.dynamic_import:
        deps.append(("prefix", PACKAGE + "."))
    return tuple(deps)


class Parsed(NamedTuple):
    """A module's nodes, the nodes binding each name, the names its statements use and the
    dotted names it may import (see `imported_names`)."""

    statements: list[Statement]
    bindings: dict[str, tuple[int, ...]]
    used: set[str]
    imported: set[str]


def module_statements(tree: ast.Module, module: str, is_package: bool = False) -> Parsed:
    """The nodes of a module; its docstrings are removed on the way."""
    _strip_docstrings_of(tree)
    uses: dict[int, _Uses] = {}
    imported: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            imported.update(_import_names(stmt, module, is_package))
        else:
            uses[id(stmt)] = _uses_of(stmt)
            for node in uses[id(stmt)].imports:
                imported.update(_import_names(node, module, is_package))
            imported.update(t for t in uses[id(stmt)].strings if t.startswith(PACKAGE + "."))
    used = {name for u in uses.values() for name, _ in u.names}
    # the names that may hold package code: all but those of other libraries' imports
    package_names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            if _in_package(_resolve_from(stmt, module, is_package)):
                package_names.update(a.asname or a.name for a in stmt.names)
        elif isinstance(stmt, ast.Import):
            package_names.update(
                (a.asname or a.name.split(".")[0]) for a in stmt.names if _in_package(a.name)
            )
        else:
            package_names.update(_bound_names(stmt))
    records = _pure_classes(
        tree, package_names, frozenset({"__init__", "__new__", "__post_init__"})
    )
    plain = _pure_classes(tree, package_names, frozenset({"__init_subclass__"}))
    statements: list[Statement] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Pass) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        ):
            continue  # does nothing when it runs
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            statements.extend(_import_nodes(stmt, module, is_package, used))
            continue
        main = _is_main_block(stmt)
        binds = frozenset() if main else frozenset(_bound_names(stmt))
        effect = not main and (
            not binds
            or isinstance(stmt, (*COMPOUND, ast.Delete))
            or _changes_state(stmt, package_names, records, plain)
        )
        deps = _statement_deps(uses[id(stmt)], module, is_package)
        statements.append(Statement(_dump(stmt), binds, effect, deps, None, stmt.lineno))
    bindings: dict[str, list[int]] = {}
    for index, statement in enumerate(statements):
        for name in statement.binds:
            bindings.setdefault(name, []).append(index)
    return Parsed(statements, {k: tuple(v) for k, v in bindings.items()}, used, imported)


def _uses_of(node: ast.AST) -> _Uses:
    uses = _Uses()
    uses.visit(node)
    return uses


@cache
def parse_module(source: str, module: str, is_package: bool = False) -> Parsed:
    """The nodes of a module's source (cached by content: an edit re-parses only its module)."""
    return module_statements(ast.parse(source, filename=module), module, is_package)


@cache
def package_modules(root: Path = PACKAGE_DIR) -> dict[str, ModuleInfo]:
    """Every module of the package under `root` with its digest, imports and statements."""
    sources = {}
    for path in sorted(root.rglob("*.py")):
        sources[_module_name(path, root)] = path
    modules = {}
    for name, path in sources.items():
        parsed = parse_module(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        digest = hashlib.sha256("".join(s.digest for s in parsed.statements).encode())
        modules[name] = ModuleInfo(
            name=name,
            digest=digest.hexdigest(),
            imports=_package_deps(parsed.imported, sources) - {name},
            statements=tuple(parsed.statements),
            bindings=parsed.bindings,
        )
    return modules


def closure(roots: Iterable[str], modules: dict[str, ModuleInfo]) -> list[str]:
    """The package modules that importing `roots` can run (sorted), roots included."""
    seen: set[str] = set()
    stack = list(_package_deps(roots, modules))
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(modules[name].imports - seen)
    return sorted(seen)


# ---------------------------------------------------------------- the graph walk


def _chain_target(module: str, chain: tuple[str, ...]) -> Target:
    return ("sym", module, chain[0], chain[1:]) if chain else ("whole", module)


def _via_import(node: Statement, chain: tuple[str, ...]) -> Target:
    """Where a use of an imported package name (with its attribute chain) leads."""
    assert node.target is not None
    if node.target[0] == "module":
        return _chain_target(node.target[1], chain)
    return ("sym", node.target[1], node.target[2], chain)


def _expand(target: Target, modules: Mapping[str, ModuleInfo]) -> Iterator[Target]:
    """The targets one step below `target` (a node's: its dependencies)."""
    kind = target[0]
    if kind == "node":
        yield from modules[target[1]].statements[target[2]].deps
    elif kind == "whole":
        info = modules.get(target[1])
        for index, node in enumerate(info.statements if info else ()):
            yield ("node", target[1], index)
            if node.target:  # what the module re-exports, for `getattr(module, name)`
                yield _via_import(node, ())
    elif kind == "local":  # a name used in a module: what binds it there, and where that leads
        _, module, name, chain = target
        info = modules[module]
        indexes = info.bindings.get(name, ())
        for index in indexes:
            yield ("node", module, index)
            if info.statements[index].target:
                yield _via_import(info.statements[index], chain)
    elif kind == "sym":
        _, module, name, chain = target
        yield from _symbol(module, name, chain, modules)
    elif kind == "string":  # a module's name, or a name inside one: the longest module
        name = target[1]
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            yield ("whole", name)
    elif kind == "prefix":
        yield from (("whole", m) for m in modules if m.startswith(target[1]))


def _symbol(
    module: str, name: str, chain: tuple[str, ...], modules: Mapping[str, ModuleInfo]
) -> Iterator[Target]:
    """A name of a package module, used from outside it."""
    info = modules.get(module)
    if info is None:
        return
    found = False
    if name in info.bindings:
        found = True
        yield ("local", module, name, chain)
    if f"{module}.{name}" in modules:  # a submodule
        found = True
        yield _chain_target(f"{module}.{name}", chain)
    if not found:
        # not bound at the top level: the module's __getattr__ answers, else the whole module
        if "__getattr__" in info.bindings:
            yield ("local", module, "__getattr__", ())
        else:
            yield ("whole", module)


def reachable(
    roots: Iterable[Target], executed: Iterable[str], modules: Mapping[str, ModuleInfo]
) -> frozenset[NodeId]:
    """The nodes reachable from `roots`, plus the state-changing statements (effects) of every
    module in `executed` (the modules the import runs) and what they reach."""
    stack: list[Target] = list(roots)
    for module in executed:
        statements = modules[module].statements
        stack.extend(("node", module, i) for i, s in enumerate(statements) if s.effect)
    seen: set[Target] = set()
    while stack:
        target = stack.pop()
        if target not in seen:
            seen.add(target)
            stack.extend(_expand(target, modules))
    return frozenset((t[1], t[2]) for t in seen if t[0] == "node" and t[1] != SCRIPT)


def _digest(nodes: Iterable[NodeId], modules: Mapping[str, ModuleInfo]) -> str:
    digest = hashlib.sha256()
    for module, index in sorted(nodes):
        digest.update(f"{module}:{modules[module].statements[index].digest}\n".encode())
    return digest.hexdigest()[:16]


@cache
def script_nodes(script: Path, root: Path = PACKAGE_DIR) -> frozenset[NodeId]:
    """The package nodes a workflow script can reach (the script's own code is not one)."""
    script = Path(script)
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    modules = package_modules(root)
    parsed = module_statements(tree, SCRIPT)
    executed = closure(parsed.imported, modules)
    if not executed:
        raise ValueError(f"{script}: imports no {PACKAGE} module; give the rule no code param")
    info = ModuleInfo(SCRIPT, "", frozenset(), tuple(parsed.statements), parsed.bindings)
    roots: list[Target] = []
    for index, node in enumerate(parsed.statements):
        if node.target is None:
            roots.append(("node", SCRIPT, index))
        elif not node.binds & parsed.used:  # imported for what importing does: all it names
            roots.append(_via_import(node, ()))
    return reachable(roots, executed, {**modules, SCRIPT: info})


@cache
def module_nodes(module: str, root: Path = PACKAGE_DIR) -> frozenset[NodeId]:
    """The package nodes `python -m <module>` can reach: the whole module and what it uses."""
    modules = package_modules(root)
    if module not in modules:
        raise ValueError(f"{module!r} is not a module of {root} (known: {sorted(modules)})")
    return reachable([("whole", module)], closure([module], modules), modules)


@cache
def script_fingerprint(script: Path, root: Path = PACKAGE_DIR) -> str:
    """Fingerprint of the package code a workflow script can reach."""
    return _digest(script_nodes(Path(script), root), package_modules(root))


@cache
def module_fingerprint(module: str, root: Path = PACKAGE_DIR) -> str:
    """Fingerprint of a package module run as `python -m <module>` (shell rules)."""
    return _digest(module_nodes(module, root), package_modules(root))


def clear_caches() -> None:
    """Forget every package and fingerprint (after editing the package's files); the parsed
    modules stay, cached by their content (`parse_module.cache_clear()` forgets them too)."""
    for cached in (package_modules, script_nodes, module_nodes, script_fingerprint):
        cached.cache_clear()
    module_fingerprint.cache_clear()
