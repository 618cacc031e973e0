"""Per-rule code fingerprints: what counts as a code change, and for which scripts.

A fingerprint covers the top-level definitions a script can reach. The cases below each build a
small package, edit one thing and check whether the script's fingerprint moves: a missed move
(an edit that changes what a rule computes but not its fingerprint) is the bug to avoid, so each
case where the analysis has to be conservative is here; a few check that it stays precise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medinjection.fingerprint import (
    PACKAGE_DIR,
    clear_caches,
    closure,
    module_fingerprint,
    normalised_digest,
    package_modules,
    script_fingerprint,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
CODE = '''"""Module doc."""

import os


def f(x):
    """Doc of f."""
    return x + 1
'''


def test_comments_docstrings_and_formatting_do_not_count() -> None:
    same = (
        '# a comment\n"""Another module doc,\nover two lines."""\nimport os\n\n\n\n'
        "def f( x ):  # why\n    '''Other words.'''\n    return (x\n            + 1)\n"
    )
    assert normalised_digest(same) == normalised_digest(CODE)
    no_docs = "import os\ndef f(x):\n    return x + 1\n"
    assert normalised_digest(no_docs) == normalised_digest(CODE)
    only_doc = '"""Module doc."""\nimport os\ndef f(x):\n    """Doc."""\n'
    assert normalised_digest(only_doc) != normalised_digest(CODE)  # the body is gone
    assert normalised_digest(CODE.replace("x + 1", "x + 2")) != normalised_digest(CODE)
    assert normalised_digest(CODE.replace("import os", "import sys")) != normalised_digest(CODE)


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "medinjection"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def _moves(tmp_path: Path, files: dict[str, str], script: str, *edits: tuple[str, str, str]):
    """For each edit (file, old, new) of its own copy of the package `files`: whether the
    script's fingerprint moves."""
    fingerprints = []
    for i, edit in enumerate([None, *edits]):
        texts = dict(files)
        if edit:
            name, old, new = edit
            assert texts[name].count(old) == 1, (name, old)
            texts[name] = texts[name].replace(old, new)
        root = tmp_path / f"v{i}"
        package = _package(root, texts)
        (root / "script.py").write_text(script)
        fingerprints.append(script_fingerprint(root / "script.py", package))
    return [after != fingerprints[0] for after in fingerprints[1:]]


def test_comments_and_docstrings_move_no_fingerprint(tmp_path: Path) -> None:
    files = {"m.py": 'def f():\n    """Doc."""\n    return 1\n'}
    assert _moves(
        tmp_path,
        files,
        "from medinjection.m import f\n",
        ("m.py", '"""Doc."""', '"""Other doc."""  # and a comment'),
        ("m.py", "return 1", "return 2"),
    ) == [False, True]


def test_only_the_definitions_a_script_reaches_count(tmp_path: Path) -> None:
    files = {
        "stage.py": (
            "from medinjection.engine import run, other\n"
            "LIMIT = 3\n"
            "def used():\n    return run(LIMIT)\n"
            "def unused():\n    return other()\n"
        ),
        "engine.py": "def run(n):\n    return n\ndef other():\n    return 0\n",
        "__init__.py": "VERSION = '1'\n",
    }
    script = "from medinjection.stage import used\nused()\n"
    assert _moves(
        tmp_path,
        files,
        script,
        ("stage.py", "return other()", "return other() + 1"),  # another rule's function
        ("engine.py", "return 0", "return 1"),  # what only that function calls
        ("stage.py", "LIMIT = 3\n", "LIMIT = 3\nNEW = 1\n"),  # a new, unused definition
        ("__init__.py", "'1'", "'2'"),  # the package's __init__, unused
        ("stage.py", "LIMIT = 3", "LIMIT = 4"),  # a module constant it uses
        ("engine.py", "return n", "return n + 1"),  # a function of another module it calls
    ) == [False, False, False, False, True, True]


def test_registries_decorators_defaults_class_attributes_and_rebinding(tmp_path: Path) -> None:
    files = {
        "m.py": (
            "from dataclasses import dataclass, field\n"
            "def _a():\n    return 'a'\n"
            "def _b():\n    return 'b'\n"
            "REGISTRY = {'a': _a, 'b': _b}\n"
            "def deco(f):\n    return f\n"
            "def _factory():\n    return [1]\n"
            "@dataclass\nclass Cfg:\n    items: list = field(default_factory=_factory)\n"
            "class K:\n    LIMIT = 3\n"
            "X = 1\n"
            "X = X + 1\n"
            "@deco\ndef run(name):\n    return REGISTRY[name](), Cfg(), K.LIMIT, X\n"
        ),
    }
    assert _moves(
        tmp_path,
        files,
        "from medinjection.m import run\n",
        ("m.py", "return 'b'", "return 'B'"),  # a function only the registry names
        ("m.py", "return f\n", "return lambda *a: f(*a)\n"),  # the decorator
        ("m.py", "return [1]", "return [2]"),  # a dataclass field's default factory
        ("m.py", "LIMIT = 3", "LIMIT = 4"),  # a class attribute read through the class
        ("m.py", "X = 1\n", "X = 2\n"),  # the first of two bindings of a name
    ) == [True, True, True, True, True]


def test_annotations_and_string_annotations_count(tmp_path: Path) -> None:
    # the settings converter resolves field types with get_type_hints: types are code there
    files = {
        "s.py": (
            "from __future__ import annotations\n"
            "from dataclasses import dataclass\n"
            "from typing import Literal, TypeVar\n"
            "Kind = Literal['a', 'b']\n"
            "class Base:\n    pass\n"
            "_T = TypeVar('_T', bound='Base')\n"
            "@dataclass\nclass Inner:\n    kind: Kind\n"
            "@dataclass\nclass Forward:\n    n: int\n"
            "@dataclass\nclass Outer:\n    inner: Inner\n    later: 'Forward | None' = None\n"
            "def build(cls: type[_T]) -> _T:\n    return cls()\n"
        ),
    }
    assert _moves(
        tmp_path,
        files,
        "from medinjection.s import Outer, build\n",
        ("s.py", "'a', 'b'", "'a', 'c'"),  # a type alias in a field's annotation
        ("s.py", "n: int", "n: float"),  # a class named in a string annotation
        ("s.py", "class Base:\n    pass", "class Base:\n    x = 1"),  # a TypeVar's bound
    ) == [True, True, True]


def test_module_aliases_attributes_and_dynamic_access(tmp_path: Path) -> None:
    files = {
        "sub/__init__.py": "",
        "sub/metrics.py": "def em():\n    return 1\ndef bleu():\n    return 2\n",
        "alias.py": "from medinjection.sub import metrics\ndef f():\n    return metrics.em()\n",
        "dotted.py": (
            "import medinjection.sub.metrics\ndef f():\n    return medinjection.sub.metrics.em()\n"
        ),
        "dynamic.py": (
            "from medinjection.sub import metrics\ndef f(n):\n    return getattr(metrics, n)()\n"
        ),
        "names.py": "def g():\n    return 1\ndef f(n):\n    return globals()[n]()\n",
        "nested.py": "def f():\n    from medinjection.sub.metrics import em\n    return em()\n",
    }
    em = ("sub/metrics.py", "return 1", "return 3")
    bleu = ("sub/metrics.py", "return 2", "return 3")
    for module in ("alias", "dotted", "nested"):  # precise: em, not bleu
        script = f"from medinjection.{module} import f\n"
        assert _moves(tmp_path / module, files, script, em, bleu) == [True, False], module
    # a module or namespace used as a whole: every definition of it counts
    script = "from medinjection.dynamic import f\n"
    assert _moves(tmp_path / "dynamic", files, script, em, bleu) == [True, True]
    names = ("names.py", "return 1", "return 2")
    assert _moves(tmp_path / "names", files, "from medinjection.names import f\n", names) == [True]


def test_module_names_in_strings_and_computed_imports(tmp_path: Path) -> None:
    files = {
        "tool.py": "def main():\n    return 1\nif __name__ == '__main__':\n    main()\n",
        "launch.py": "CMD = ['python', '-m', 'medinjection.tool']\ndef run():\n    return CMD\n",
        "plugins/__init__.py": "",
        "plugins/one.py": "def load():\n    return 1\n",
        "loader.py": (
            "import importlib\n"
            "def load(name):\n"
            "    return importlib.import_module(f'medinjection.plugins.{name}').load()\n"
            "def load_any(name):\n    return importlib.import_module(name)\n"
        ),
    }
    main_block = ("tool.py", "    main()\n", "    print(main())\n")
    tool = ("tool.py", "return 1", "return 2")
    script = "from medinjection.launch import run\n"
    assert _moves(tmp_path / "a", files, script, tool, main_block) == [True, True]
    plugin = ("plugins/one.py", "return 1", "return 2")
    script = "from medinjection.loader import load\n"
    assert _moves(tmp_path / "b", files, script, plugin) == [True]
    script = "from medinjection.loader import load_any\n"  # any module of the package
    assert _moves(tmp_path / "c", files, script, tool, plugin) == [True, True]
    # imported, not run: the __main__ block does not run
    script = "from medinjection.tool import main\n"
    assert _moves(tmp_path / "d", files, script, tool, main_block) == [True, False]


def test_reexports_lazy_exports_and_star_imports(tmp_path: Path) -> None:
    files = {
        "sub/__init__.py": "from medinjection.sub.impl import g\n",
        "sub/impl.py": "def g():\n    return 1\ndef h():\n    return 2\n",
        "lazy/__init__.py": (
            "import importlib\n"
            "def __getattr__(name):\n"
            "    return getattr(importlib.import_module('medinjection.lazy.impl'), name)\n"
        ),
        "lazy/impl.py": "def g():\n    return 1\n",
        "star.py": "from medinjection.sub.impl import *\ndef f():\n    return g()\n",
        "dynamic.py": (
            "import medinjection.sub\ndef f(n):\n    return getattr(medinjection.sub, n)()\n"
        ),
    }
    g = ("sub/impl.py", "return 1", "return 3")
    h = ("sub/impl.py", "return 2", "return 3")
    script = "from medinjection.sub import g\n"
    assert _moves(tmp_path / "a", files, script, g, h) == [True, False]
    script = "from medinjection.lazy import g\n"
    lazy = ("lazy/impl.py", "return 1", "return 2")
    assert _moves(tmp_path / "b", files, script, lazy) == [True]
    script = "from medinjection.star import f\n"  # a star import takes the whole module
    assert _moves(tmp_path / "c", files, script, g, h) == [True, True]
    # the module, read by name: what it re-exports counts too
    script = "from medinjection.dynamic import f\n"
    assert _moves(tmp_path / "d", files, script, g, h) == [True, False]


def test_what_importing_a_module_runs_counts_for_every_importer(tmp_path: Path) -> None:
    files = {
        "registry.py": "HANDLERS = {}\ndef register(name, fn):\n    HANDLERS[name] = fn\n",
        "plugin.py": (
            "from medinjection.registry import HANDLERS, register\n"
            "def _x():\n    return 1\n"
            "HANDLERS['x'] = _x\n"  # binds no name: a registry mutation
            "def _y():\n    return 1\n"
            "_Y = register('y', _y)\n"  # binds a name, but calls package code
            "import json_plugin_that_registers_itself\n"  # another library, never used here
        ),
        "unimported.py": "from medinjection.registry import HANDLERS\nHANDLERS['z'] = 1\n",
        "stage.py": (
            "import medinjection.plugin\n"
            "from medinjection.registry import HANDLERS\n"
            "def run(name):\n    return HANDLERS[name]()\n"
        ),
    }
    script = "from medinjection.stage import run\n"
    assert _moves(
        tmp_path,
        files,
        script,
        ("plugin.py", "def _x():\n    return 1", "def _x():\n    return 2"),
        ("plugin.py", "def _y():\n    return 1", "def _y():\n    return 2"),
        ("plugin.py", "import json_plugin_that_registers_itself", "import other_plugin"),
        ("unimported.py", "= 1", "= 2"),  # no import runs it
    ) == [True, True, True, False]


def test_the_module_closure_follows_imports_parents_and_module_strings(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "a/__init__.py": "",
            "a/b.py": "from . import c\nfrom ..d import thing\n",
            "a/c.py": "import json\n",
            "d.py": "def thing():\n    from medinjection.e import g\n",
            "e.py": "g = 1\n",
            "f.py": "NAME = 'medinjection.h'\n",  # python -m / importlib target
            "h.py": "",
            "unused.py": "import medinjection.a.b\n",
        },
    )
    modules = package_modules(package)
    assert closure(["medinjection.a.b"], modules) == [
        "medinjection",
        "medinjection.a",
        "medinjection.a.b",
        "medinjection.a.c",
        "medinjection.d",
        "medinjection.e",
    ]
    assert closure(["medinjection.f"], modules) == [
        "medinjection",
        "medinjection.f",
        "medinjection.h",
    ]


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "medinjection"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_edit_of_a_definition_changes_only_the_rules_that_reach_it(tmp_path: Path) -> None:
    """The rerun table of README.md at the fingerprint level, on a copy of the real package."""
    copy = _copy(tmp_path)
    scripts = sorted(SCRIPTS.glob("*.py"))

    def state() -> dict[str, str]:
        clear_caches()
        fingerprints = {s.stem: script_fingerprint(s, copy) for s in scripts}
        fingerprints["train"] = module_fingerprint("medinjection.modeling.launch", copy)
        return fingerprints

    before = state()
    edits = [
        # one stage function: only its rule
        ("stages/train.py", "merged %s into %s", "merged %s in %s", ["merge_adapter"]),
        ("stages/judge.py", "meta-evaluation on %d", "metaeval on %d", ["metaeval"]),
        # the rendered training config: its rule and the training, not the other train rules
        (
            "modeling/train_config.py",
            "must be in [0, 1)",
            "must be in [0, 1[",
            ["render_train_config", "train"],
        ),
        (
            "modeling/tiny.py",
            "BPE tokenizer on %d",
            "BPE tokenizer from %d",
            ["prepare_base_model"],
        ),
        # one settings block: the rules that build it (settings.py holds every block)
        (
            "settings.py",
            '    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"]',
            '    lr_scheduler: Literal["cosine", "linear", "constant"]',
            ["render_train_config", "train"],
        ),
        # a new definition nothing uses yet, then an edit of one report function
        ("stages/report.py", "import logging\n", "import logging\n\nEDITED = True\n", []),
        ("stages/report.py", "per-dataset tables -> %s", "per-dataset tables: %s", ["table1"]),
    ]
    for module, old, new, expected in edits:
        _edit(copy / module, old, new)
        after = state()
        assert sorted(k for k in after if after[k] != before[k]) == expected, module
        before = after
    # the launcher runs the training module by name: training code is part of its fingerprint
    _edit(copy / "modeling/train.py", "def main(", "def main(  # x\n")  # formatting: nothing
    assert state() == before
    main = 'if __name__ == "__main__":\n    main()'
    _edit(copy / "modeling/train.py", main, main + "\n    print()")
    after = state()
    assert sorted(k for k in after if after[k] != before[k]) == ["train"]


def test_unknown_module_and_script_without_package_imports_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a module of"):
        module_fingerprint("medinjection.nope")
    script = tmp_path / "s.py"
    script.write_text("import os\n")
    with pytest.raises(ValueError, match="imports no medinjection module"):
        script_fingerprint(script)
