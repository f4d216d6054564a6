"""What `pip install evalsuite` pulls in: only packages the code imports, or ones kept for a stated reason."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOT_IMPORTED = {"pytest-xdist": "`pytest -n auto` (the README's command) works after the plain install"}


def top_level_modules(distribution_name: str) -> set[str]:
    """The importable names an installed distribution provides, from its file list (its RECORD)."""
    files = distribution(distribution_name).files or []
    tops = {file.parts[0] for file in files}
    return {top.removesuffix(".py") for top in tops if not top.endswith((".dist-info", ".data")) and top != ".."}


def imported_top_level_modules(package: Path) -> set[str]:
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_dependency_is_imported_by_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    applicable = [r for r in requirements if r.marker is None or r.marker.evaluate()]
    imported = imported_top_level_modules(ROOT / "evalsuite")
    unused = sorted(r.name for r in applicable if r.name not in NOT_IMPORTED and not top_level_modules(r.name) & imported)
    assert unused == [], f"pinned in pyproject.toml but never imported by evalsuite: {unused}"


def test_the_fast_rouge_port_is_an_extra_not_a_requirement():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [line for line in project["dependencies"] if Requirement(line).name == "rouge-score-rs"]
    assert [Requirement(line).name for line in project["optional-dependencies"]["fast"]] == ["rouge-score-rs"]
