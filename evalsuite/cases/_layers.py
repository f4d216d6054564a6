"""Settings layers: where each setting of a case came from, so an error points into the right file.

Layers merge in this order, later wins (dicts deep-merged, lists replaced): the ``[tool.evalsuite]``
table of ``<rootdir>/pyproject.toml`` (minus tool-level settings such as ``prices``), the
``defaults.yaml`` beside the case file (not a suite itself: the collector skips it), the file's
``defaults:``, then the case. Credentials are rejected in every layer: a key written in YAML or TOML
ends up in git and in reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.cases._source import TEXT_START, KeyPath, dotted, read_tool_table, read_yaml, toml_lines
from evalsuite.errors import CaseFileError

DEFAULTS_FILE = "defaults.yaml"
TOOL_KEYS = frozenset({"prices"})  # [tool.evalsuite] keys that configure the tool, not cases
SECRET_KEYS = frozenset({"api_key", "key", "token", "password"})  # setting names; the env rule is _util/secrets
# Maps of user data (rows, label names, column names): their keys are data, never settings.
DATA_MAPS = (("dataset", "examples"), ("dataset", "columns"), ("dataset", "label_names"), ("parse", "labels"))


@dataclass
class Layer:
    """One source of settings with the line of each of its keys."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    prefix: KeyPath = ()  # where the case's keys live inside ``lines`` (e.g. ("cases", 3))


def tool_settings(rootdir: Path) -> dict[str, Any]:
    """The ``[tool.evalsuite]`` table of ``<rootdir>/pyproject.toml`` ({} when absent)."""
    return read_tool_table(rootdir)[0]


def base_layers(path: Path, rootdir: Path) -> list[Layer]:
    """The layers under a case file: pyproject's ``[tool.evalsuite]``, then ``defaults.yaml`` beside it."""
    layers = []
    table, text = read_tool_table(rootdir)
    table = {k: v for k, v in table.items() if k not in TOOL_KEYS}
    if table:
        layer = Layer(rootdir / "pyproject.toml", table, toml_lines(text, table))
        reject_secrets(layer, rootdir)
        layers.append(layer)
    defaults_path = path.parent / DEFAULTS_FILE
    if defaults_path.is_file():
        data, lines = read_yaml(defaults_path, rootdir)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise CaseFileError(defaults_path, 1, "defaults.yaml must be a mapping of case keys "
                                "(model:, dataset:, parse:, ...)", rootdir=rootdir)
        layer = Layer(defaults_path, data, lines)
        reject_secrets(layer, rootdir)
        layers.append(layer)
    return layers


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Later wins; dicts merge key by key, everything else (lists included) is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def line_of(layers: list[Layer], key: KeyPath) -> tuple[Path, int]:
    """File and line of ``key`` in the layer that set it (the last layer holding its deepest existing
    prefix), falling back to the closest parent key that has a line in that layer."""
    for depth in range(len(key), -1, -1):
        prefix = key[:depth]
        for layer in reversed(layers):  # the last layer that holds a key is the one that won
            if _has(layer.data, prefix):
                for known in range(len(prefix), -1, -1):
                    if layer.prefix + prefix[:known] in layer.lines:
                        return layer.path, layer.lines[layer.prefix + prefix[:known]]
    last = layers[-1]
    return last.path, last.lines.get(last.prefix, 1)


def line_in_text(layers: list[Layer], key: KeyPath, text_line: int) -> tuple[Path, int]:
    """File and line of line ``text_line`` (1-based) of the text at ``key``: counted from the line below the
    key for a block scalar (``user: |``), else the key's own line (a one-line or quoted string)."""
    for layer in reversed(layers):
        if _has(layer.data, key):
            start = layer.lines.get(layer.prefix + key + (TEXT_START,))
            if start is not None:
                return layer.path, start + text_line - 1
            break
    return line_of(layers, key)


def _has(data: Any, key: KeyPath) -> bool:
    for part in key:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


def error_at(layers: list[Layer], key: KeyPath, message: str, rootdir: Path) -> CaseFileError:
    """``<file>:<line>: <key>: <message>`` at the line where ``key`` was set."""
    file, line = line_of(layers, key)
    return CaseFileError(file, line, f"{dotted(key)}: {message}" if key else message, rootdir=rootdir)


def reject_secrets(layer: Layer, rootdir: Path, data_under: tuple[KeyPath, ...] = ((),)) -> None:
    """Credentials belong in the environment: a key in YAML ends up in git and in reports."""
    for key in sorted(layer.lines, key=lambda k: layer.lines[k]):
        if not key or not isinstance(key[-1], str) or key[-1].lower() not in SECRET_KEYS:
            continue
        if any((below := _relative(key, root)) is not None and _in_data_map(below) for root in data_under):
            continue
        raise CaseFileError(layer.path, layer.lines[key],
                            f"{dotted(key)}: credentials must not be written in case files; set the "
                            "OPENAI_API_KEY or AZURE_OPENAI_API_KEY environment variable instead "
                            "(a CI secret in CI)", rootdir=rootdir)


def _relative(key: KeyPath, root: KeyPath) -> KeyPath | None:
    """``key`` below ``root`` (None in ``root`` matches any list index), else None."""
    if len(key) < len(root):
        return None
    for part, want in zip(key, root):
        if want is not None and part != want:
            return None
    return key[len(root):]


def _in_data_map(key: KeyPath) -> bool:
    return any(key[: len(m)] == m and len(key) > len(m) for m in DATA_MAPS)
