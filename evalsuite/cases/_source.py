"""Source-mapped reading: YAML (and the ``[tool.evalsuite]`` TOML table) with the line of every key.

Why: users edit these files by hand, so every later error must name the line it is about. PyYAML's
node tree keeps the line of each key; tomllib keeps none, so its top-level keys are found by scanning
the text. Nothing here knows what a case is.

Why the bounds: a case file is input a reviewer may not read closely. YAML aliases share one node,
so a few lines can stand for billions of values ("billion laughs", merge-key ``<<`` bombs) that every
later walk would expand; deep nesting overflows the recursive composer. Both are refused while
composing, at the line where the limit is crossed. Any other unreadable file (not UTF-8, a control
character) is one ``CaseFileError`` with its line too, never a traceback.
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
TEXT_START = "<text start>"  # lines[key + (TEXT_START,)]: the first line of a block scalar's text (``user: |``)
MAX_DEPTH = 64  # nesting levels; case files use about 8, PyYAML's recursive composer fails near 300
MAX_ALIAS_VALUES = 100_000  # values that aliases may add in all; sharing model settings adds tens


class _LimitExceeded(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


class _Bounded:
    """Bounded nesting and alias expansion, for a loader built from PyYAML's composer and safe constructor.

    Each node's size is the number of values it stands for once aliases are expanded: an anchored node's size
    is recorded when it is complete, and an alias adds that size again.
    """

    def _init_bounds(self) -> None:
        self._depth = 0
        self._alias_values = 0
        self._values = 0
        self._anchored_sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # type: ignore[misc]
            size = self._anchored_sizes.get(id(node))
            if size is None:
                raise _LimitExceeded(line, f"the alias *{event.anchor} refers to a value that contains it (a "
                                     "recursive structure); write the value out instead")
            self._alias_values += size
            self._values += size
            if self._alias_values > MAX_ALIAS_VALUES:
                raise _LimitExceeded(line, f"YAML aliases expand to more than {MAX_ALIAS_VALUES:,} values (limit "
                                     f"reached at *{event.anchor}), which looks like an alias bomb; write the "
                                     "shared values out, or share settings through defaults: or defaults.yaml")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitExceeded(line, f"values nest more than {MAX_DEPTH} levels deep; flatten the structure "
                                 "(case files need about 8 levels)")
        before = self._values
        node = super().compose_node(parent, index)  # type: ignore[misc]
        self._depth -= 1
        self._values += 1
        if event.anchor is not None:
            self._anchored_sizes[id(node)] = self._values - before
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's constructors raise bare Python errors on an explicit tag that does not fit its value
        (``!!int x``, ``!!timestamp x``): turned into a YAML error at the node's line."""
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError):
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = f" {_excerpt(node.value)!r}" if isinstance(node, yaml.ScalarNode) else ""
            raise yaml.constructor.ConstructorError(None, None, f"the tag {tag} does not fit the value{value}; "
                                                    "remove the tag or fix the value", node.start_mark) from None


class _SafeLineLoader(_Bounded, yaml.SafeLoader):
    """PyYAML's safe loader, bounded; its own class, so nothing here can register unsafe tags globally. Its errors
    are the ones users read."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._init_bounds()


_CParser: Any
try:
    import yaml.cyaml

    _CParser = getattr(yaml.cyaml, "CParser")  # libyaml's scanner and parser, when PyYAML was built with it
except ImportError:  # pragma: no cover - a PyYAML without libyaml
    _CParser = None


if _CParser is not None:

    class _FastLineLoader(_Bounded, yaml.composer.Composer, _CParser, yaml.constructor.SafeConstructor,
                          yaml.resolver.Resolver):
        """The same composer, bounds and constructor over libyaml's events (the scanner is most of the time of a
        pure-Python load: collecting 1,000 case files spent 2 s in it). Used only for files it reads without
        error: any problem is read again by ``_SafeLineLoader``, so every message stays PyYAML's."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._init_bounds()


def _fast_read(text: str) -> tuple[Any, Any, Any] | None:
    """(loader, root node, data) through libyaml, or None: no libyaml, a character PyYAML refuses, or any error."""
    if _CParser is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = _FastLineLoader(text)
    try:
        node = loader.get_single_node()
        return loader, node, loader.construct_document(node) if node is not None else None
    except Exception:  # noqa: BLE001  # read again by the pure-Python loader, which words the error
        return None
    finally:
        loader.dispose()


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def dotted(key: KeyPath) -> str:
    """``("cases", 0, "model")`` -> ``"cases[0].model"``: a key as messages write it."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path, rootdir: Path) -> tuple[Any, dict[KeyPath, int]]:
    """Safe-load a YAML file and map every key path to its 1-based line."""
    text = read_text(path, rootdir)
    fast = _fast_read(text)
    if fast is not None:
        loader, node, data = fast
        lines: dict[KeyPath, int] = {(): 1}
        try:
            if node is not None:
                _index_lines(loader, node, (), lines, path, rootdir)
            return data, lines
        except yaml.YAMLError:  # a key that cannot be built: read again below for PyYAML's message
            pass
    try:
        loader = _SafeLineLoader(text)
    except yaml.reader.ReaderError as exc:  # the whole text is checked for control characters up front
        raise _unreadable(path, text, exc, rootdir) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines = {(): 1}
        if node is not None:
            _index_lines(loader, node, (), lines, path, rootdir)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise CaseFileError(path, line, f"invalid YAML: {problem}; check the indentation, and quote values that "
                            "contain ': ', '#', '{' or start with '*', '&', '!'", rootdir=rootdir) from None
    except yaml.reader.ReaderError as exc:
        raise _unreadable(path, text, exc, rootdir) from None
    except yaml.YAMLError as exc:
        raise CaseFileError(path, 1, f"invalid YAML: {exc}", rootdir=rootdir) from None
    except _LimitExceeded as exc:
        raise CaseFileError(path, exc.line, exc.message, rootdir=rootdir) from None
    finally:
        loader.dispose()
    return data, lines


def read_text(path: Path, rootdir: Path) -> str:
    """The file as UTF-8 text; a file that cannot be read or decoded is a ``CaseFileError`` at the bad byte's line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CaseFileError(path, 1, f"cannot read the file: {exc.strerror}", rootdir=rootdir) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CaseFileError(path, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            "save the file as UTF-8", rootdir=rootdir) from None


def _unreadable(path: Path, text: str, exc: yaml.reader.ReaderError, rootdir: Path) -> CaseFileError:
    line = text.count("\n", 0, exc.position) + 1
    return CaseFileError(path, line, f"character U+{exc.character:04X} is not allowed in YAML (control characters "
                         "such as NUL are refused); remove it, or write it as an escape in a double-quoted string",
                         rootdir=rootdir)


def _index_lines(loader: Any, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int],
                 file: Path, rootdir: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue
            # Pairs a merge key (<<: *base) brought in come first and lie outside this mapping's text: a key
            # written here overrides them, as YAML intends.
            written_here = node.start_mark.index <= key_node.start_mark.index <= node.end_mark.index
            if key in seen and written_here:  # PyYAML silently keeps the last one; a typo'd copy would be invisible
                raise CaseFileError(file, key_node.start_mark.line + 1,
                                    f"{dotted(path + (key,))}: duplicate key; keep only one", rootdir=rootdir)
            if written_here:
                seen.add(key)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(loader, value_node, path + (key,), lines, file, rootdir)
    elif isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        lines[path + (TEXT_START,)] = node.start_mark.line + 2  # the text starts below the indicator
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _index_lines(loader, item, path + (index,), lines, file, rootdir)


def read_tool_table(rootdir: Path) -> tuple[dict[str, Any], str]:
    """The ``[tool.evalsuite]`` table of ``<rootdir>/pyproject.toml`` and the file's text ({} and "" when absent)."""
    path = Path(rootdir) / "pyproject.toml"
    if not path.is_file():
        return {}, ""
    text = read_text(path, rootdir)
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise CaseFileError(path, 1, "invalid TOML: values nest too deeply; flatten them", rootdir=rootdir) from None
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
