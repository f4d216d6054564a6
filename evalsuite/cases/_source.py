"""Source-mapped reading: YAML (and the ``[tool.evalsuite]`` TOML table) with the line of every key.

Why: users edit these files by hand, so every later error must name the line it is about. PyYAML's
node tree keeps the line of each key; tomllib keeps none, so its top-level keys are found by scanning
the text. Nothing here knows what a case is.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from typing import Any

import yaml

from evalsuite.errors import CaseFileError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KeyPath = tuple[Any, ...]  # ("cases", 0, "model", "name"): a mapping key or a list index per level


class _SafeLineLoader(yaml.SafeLoader):
    """PyYAML's safe loader; kept as its own class so nothing here can register unsafe tags globally."""


def dotted(key: KeyPath) -> str:
    """``("cases", 0, "model")`` -> ``"cases[0].model"``: a key as messages write it."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path, rootdir: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Safe-load a YAML file and map every key path to its 1-based line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFileError(path, 1, f"cannot read the file: {exc.strerror}", rootdir=rootdir) from None
    loader = _SafeLineLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines: dict[KeyPath, int] = {(): 1}
        if node is not None:
            _index_lines(loader, node, (), lines, path, rootdir)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise CaseFileError(path, line, f"invalid YAML: {problem}; check the indentation, and quote values that "
                            "contain ': ', '#', '{' or start with '*', '&', '!'", rootdir=rootdir) from None
    except yaml.YAMLError as exc:
        raise CaseFileError(path, 1, f"invalid YAML: {exc}", rootdir=rootdir) from None
    finally:
        loader.dispose()
    return data, lines


def _index_lines(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int],
                 file: Path, rootdir: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue
            if key in seen:  # PyYAML silently keeps the last one; a typo'd copy would be invisible
                raise CaseFileError(file, key_node.start_mark.line + 1,
                                    f"{dotted(path + (key,))}: duplicate key; keep only one", rootdir=rootdir)
            seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(loader, value_node, path + (key,), lines, file, rootdir)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _index_lines(loader, item, path + (index,), lines, file, rootdir)


def read_tool_table(rootdir: Path) -> tuple[dict[str, Any], str]:
    """The ``[tool.evalsuite]`` table of ``<rootdir>/pyproject.toml`` and the file's text ({} and "" when absent)."""
    path = Path(rootdir) / "pyproject.toml"
    if not path.is_file():
        return {}, ""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(exc))) else 1
        raise CaseFileError(path, line, f"invalid TOML: {exc}; fix the syntax", rootdir=rootdir) from None
    table = data.get("tool", {}).get("evalsuite", {})
    return (table if isinstance(table, dict) else {}), text


def toml_lines(text: str, table: dict[str, Any]) -> dict[KeyPath, int]:
    """Best-effort lines for the top-level keys of ``[tool.evalsuite]`` (tomllib keeps no positions)."""
    lines: dict[KeyPath, int] = {}
    header = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if re.match(r"^\[\s*tool\.evalsuite\s*\]", stripped):
            header = number
            lines[()] = number
            continue
        if header is None:
            continue
        if m := re.match(r"^\[\s*tool\.evalsuite\.([A-Za-z0-9_\-]+)", stripped):
            lines.setdefault((m.group(1),), number)
        elif stripped.startswith("[") and not stripped.startswith("[tool.evalsuite"):
            header = None
        elif m := re.match(r"^([A-Za-z0-9_\-]+)\s*[=.]", stripped):
            lines.setdefault((m.group(1),), number)
    lines.setdefault((), 1)
    return {k: v for k, v in lines.items() if not k or k[0] in table}
