"""Per-rule code fingerprints: what counts as a code change, and for which scripts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medinjection.fingerprint import (
    PACKAGE_DIR,
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


def test_imports_are_followed_transitively_with_parents_and_module_strings(tmp_path: Path) -> None:
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
    script = tmp_path / "script.py"
    script.write_text("from medinjection.a.b import c\nimport numpy\n")
    before = script_fingerprint(script, package)
    (package / "unused.py").write_text("import os\n")  # not reachable from the script
    (package / "e.py").write_text('"""Now documented."""\n# and commented\ng = 1\n')
    package_modules.cache_clear()
    script_fingerprint.cache_clear()
    assert script_fingerprint(script, package) == before
    (package / "e.py").write_text("g = 2\n")
    package_modules.cache_clear()
    script_fingerprint.cache_clear()
    assert script_fingerprint(script, package) != before


def test_a_module_edit_changes_only_the_scripts_that_reach_it(tmp_path: Path) -> None:
    copy = tmp_path / "medinjection"
    shutil.copytree(PACKAGE_DIR, copy)
    scripts = sorted(SCRIPTS.glob("*.py"))
    before = {s.name: script_fingerprint(s, copy) for s in scripts}
    train = module_fingerprint("medinjection.modeling.launch", copy)
    report = copy / "stages" / "report.py"  # the stage of the report.smk rules
    report.write_text(report.read_text() + "\nEDITED = True\n")
    package_modules.cache_clear()
    script_fingerprint.cache_clear()
    module_fingerprint.cache_clear()
    changed = sorted(s.name for s in scripts if script_fingerprint(s, copy) != before[s.name])
    assert changed == [
        "plot_judge_length.py", "plot_per_dataset.py", "plot_table1.py", "significance.py",
        "table1.py",
    ]  # fmt: skip
    assert module_fingerprint("medinjection.modeling.launch", copy) == train
    # the launcher runs the training module by name: training code is part of its fingerprint
    names = closure(["medinjection.modeling.launch"], package_modules(copy))
    assert "medinjection.modeling.train" in names and "medinjection.stages.report" not in names


def test_unknown_module_and_script_without_package_imports_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a module of"):
        module_fingerprint("medinjection.nope")
    script = tmp_path / "s.py"
    script.write_text("import os\n")
    with pytest.raises(ValueError, match="imports no medinjection module"):
        script_fingerprint(script)
