"""``evalsuite scan``: find anything secret-looking in cassettes and reports before they are committed.

Why a scanner when recording already redacts: redaction knows only the secrets of the environment it
ran in. A cassette recorded on a laptop with another key, hand-edited, or recorded by an older
version may still hold one; a pre-commit hook or a CI step running ``python -m evalsuite scan`` stops
it before it is pushed. What counts: the values of the current environment's secrets and of the
``eval_redact`` list in every written form (as is, JSON-, HTML- or URL-encoded, base64; JSON strings
are also decoded, whatever their escapes), the ``eval_redact`` patterns, and well-known key shapes
(:data:`KNOWN_SHAPES`). A finding names the file, the line and the kind of secret, never the value.

Exit codes: 0 nothing found, 1 something found, 2 unusable input (a missing path, a bad ``eval_redact``).
"""

from __future__ import annotations

import configparser
import html
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from evalsuite._util.secrets import PATTERN_TIMEOUT_S, USER_LIST, env_secrets, user_secrets, written_forms
from evalsuite.errors import EvalsuiteError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FOUND, CLEAN, UNUSABLE = 1, 0, 2
KNOWN_SHAPES: tuple[tuple[str, Any], ...] = (  # regex patterns, like the user's: one way to search them all
    ("OpenAI-style API key (sk-...)", regex.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("Azure API key (32 hex digits in an api-key header)",
     regex.compile(r"(?i)\bapi[-_]?key\b[\"']?\s*[:=]\s*\[?\s*[\"']?[0-9a-f]{32}\b")),
    ("bearer token (Bearer ...)", regex.compile(r"\bBearer\s+[A-Za-z0-9._~+/-]{16,}")),
    ("AWS access key id (AKIA...)", regex.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token (ghp_...)", regex.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("JSON Web Token (eyJ...)", regex.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("Google API key (AIza...)", regex.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("Slack token (xox...)", regex.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("private key block", regex.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
)
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')  # one JSON string literal, on one line
_FIX = ("Fix: re-record with the secret set in the environment (it is then redacted), add it to the eval_redact "
        "ini key, or edit the file; a real key that reached a commit must be rotated")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


# A numeric character reference, and how much text around it is decoded with it (it may spell part of a key).
_CHARACTER_REFERENCE = re.compile(r"&#[xX]?[0-9a-fA-F]{1,6};")
_AROUND = 256


class Detector:
    """What is looked for: built once (the environment, the user's list), applied to many files."""

    def __init__(self, environ: Mapping[str, str] | None = None, redact: Sequence[str] = ()) -> None:
        user = user_secrets(redact)
        kinds: dict[str, str] = {}  # written form -> what it is
        for value, name in env_secrets(environ).items():
            for form, how in written_forms(value).items():
                kinds.setdefault(form, f"the value of ${name} ({how})")
        for value in user.values:
            for form, how in written_forms(value).items():
                kinds.setdefault(form, f"an {USER_LIST} value ({how})")
        self._kinds = kinds
        forms = sorted(kinds, key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._patterns: list[tuple[str, Any]] = [
            *KNOWN_SHAPES, *((f"a match of the {USER_LIST} pattern {p.pattern!r}", p) for p in user.patterns)
        ]

    def _plain(self, text: str) -> Iterator[tuple[int, str]]:
        if self._literal is not None:
            for found in self._literal.finditer(text):
                yield found.start(), self._kinds[found[0]]
        for kind, pattern in self._patterns:
            try:
                for found in pattern.finditer(text, timeout=PATTERN_TIMEOUT_S):
                    yield found.start(), kind
            except TimeoutError:
                raise EvalsuiteError(f"{kind}: the pattern took over {PATTERN_TIMEOUT_S:g} s (catastrophic "
                                     "backtracking); rewrite it without nested repetition, e.g. (a+)+ -> a+") from None

    def find(self, text: str) -> Iterator[tuple[int, str]]:
        """(offset, kind) of each secret-looking thing in ``text``, JSON strings also decoded."""
        yield from self._plain(text)
        for literal in _JSON_STRING.finditer(text):
            if "\\" not in literal[0]:
                continue  # nothing escaped: the plain search saw it as it is
            try:
                decoded = json.loads(literal[0])
            except ValueError:
                continue
            for _, kind in self._plain(decoded):
                yield literal.start(), f"{kind}, in an escaped JSON string"
        end = -1
        for entity in _CHARACTER_REFERENCE.finditer(text):  # &#67;&#x41;...: an HTML page's way to spell any character
            if entity.start() < end:
                continue  # inside the stretch just decoded
            start, end = max(0, entity.start() - _AROUND), entity.end() + _AROUND
            for _, kind in self._plain(html.unescape(text[start:end])):
                yield entity.start(), f"{kind}, written with HTML character references"


def scan_file(path: Path, detector: Detector, shown: str) -> list[Finding]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    found = {(text.count("\n", 0, offset) + 1, kind) for offset, kind in detector.find(text)}
    return [Finding(shown, line, kind) for line, kind in sorted(found)]


def files_under(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


# configuration: the ini keys of the project around the working directory, as pytest finds them --------------

def _ini_values(path: Path) -> dict[str, Any] | None:
    """The [pytest] settings of one config file, or None when it has none (pytest then looks further up)."""
    if path.name == "pyproject.toml":
        section = tomllib.loads(path.read_text()).get("tool", {}).get("pytest", {}).get("ini_options")
        return dict(section) if isinstance(section, dict) else None
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    name = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(name):
        return dict(parser.items(name))
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def project_settings(cwd: Path) -> tuple[Path, dict[str, Any]]:
    """(rootdir, ini values) of the first pytest config file in ``cwd`` or above; (cwd, {}) without one."""
    for directory in (cwd, *cwd.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            candidate = directory / name
            if candidate.is_file():
                values = _ini_values(candidate)
                if values is not None:
                    return directory, values
    return cwd, {}


def _lines(value: Any) -> list[str]:
    """An ini ``linelist`` value: a TOML list, or text with one entry per line."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _shown(path: Path, cwd: Path) -> str:
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(paths: Sequence[str], *, cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Scan ``paths`` (default: the project's cassette and report directories); print findings, return the exit code."""
    cwd = Path.cwd() if cwd is None else cwd
    try:
        rootdir, ini = project_settings(cwd)
        detector = Detector(environ, _lines(ini.get("eval_redact")))
        if paths:
            targets = [cwd / p for p in paths]
            missing = [p for p, t in zip(paths, targets) if not t.exists()]
            if missing:
                raise EvalsuiteError(f"{', '.join(missing)}: no such file or directory; pass cassette or report "
                                     "files or directories, or nothing to scan the project's cassettes and reports")
        else:
            dirs = (ini.get("eval_cassette_dir") or "cassettes", ini.get("eval_report_dir") or "reports")
            targets = [rootdir / str(d).strip() for d in dirs if (rootdir / str(d).strip()).is_dir()]
        files = files_under(targets)
        findings = [f for path in files for f in scan_file(path, detector, _shown(path, cwd))]
    except (EvalsuiteError, OSError, ValueError) as exc:  # ValueError: a malformed pyproject.toml or ini file
        print(f"evalsuite scan: {exc}", file=sys.stderr)
        return UNUSABLE
    if not findings:
        print(f"evalsuite scan: no secrets found in {len(files)} files")
        return CLEAN
    print("\n".join(map(str, findings)))
    n_files = len({f.path for f in findings})
    print(f"evalsuite scan: {len(findings)} possible secret(s) in {n_files} of {len(files)} files. {_FIX}",
          file=sys.stderr)
    return FOUND
