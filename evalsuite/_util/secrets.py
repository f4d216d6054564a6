"""The one secret rule, shared by cassettes (at record time), report files and ``evalsuite scan``.

A secret is any of:

- the value (8+ characters) of an environment variable whose upper-cased name contains KEY, TOKEN,
  SECRET, PASSWORD, PASSWD, CREDENTIAL, ORG_ID or PROJECT_ID;
- the value of a credential header or query parameter (:data:`CREDENTIAL_HEADERS`, :data:`CREDENTIAL_QUERY`),
  learned by the cassette redactor from the requests it stores;
- a line of the user's list (ini key ``eval_redact``): a literal value, or ``re:<regex>``.

It is replaced by one placeholder scheme: ``[REDACTED:<ENV_NAME>]`` where the environment names it,
``[REDACTED:<header or parameter>]`` for a learned credential, ``[REDACTED:eval_redact]`` for the
user's list, else ``[REDACTED]``. Square brackets survive JSON, HTML and Markdown unchanged, so the
placeholder stays visible in every file it is written to.

Why every written form: a value reaches a file as is, JSON-escaped (``\\"``, ``\\/``, or ``\\u0065`` per
character), HTML-escaped, URL-encoded or base64-encoded (Basic auth); a scrub that looks only for the
value as is misses the rest. Cassettes scrub the decoded strings of JSON bodies instead (see
:mod:`evalsuite.cassettes._redact`), so no escape can hide a secret there.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus

import regex

from evalsuite.errors import EvalsuiteError, SettingsError

SECRET_NAME = re.compile("KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ORG_ID|PROJECT_ID")
MIN_SECRET_LENGTH = 8  # shorter values (e.g. "true", a port) would scrub ordinary text
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key",
    "openai-organization", "openai-project", "cookie", "set-cookie",
})
CREDENTIAL_QUERY = frozenset({"api-key", "api_key", "apikey", "key", "token", "access_token", "sig", "signature"})
REDACTED = "[REDACTED]"
USER_LIST = "eval_redact"  # the ini key of the user's list, and its placeholder's name
REGEX_PREFIX = "re:"
PATTERN_TIMEOUT_S = 1.0  # a user pattern that backtracks catastrophically stops the write, not the machine


def placeholder(source: str | None = None) -> str:
    """What replaces a secret: names where it came from (an environment variable, a header), when known."""
    return f"[REDACTED:{source}]" if source else REDACTED


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name.upper()) is not None


def env_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secret value -> the name of the (first, alphabetically) environment variable holding it."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name in sorted(env):
        value = env[name]
        if len(value) >= MIN_SECRET_LENGTH and is_secret_name(name):
            found.setdefault(value, name)
    return found


class UserSecrets(NamedTuple):
    """The user's list (``eval_redact``), parsed: literal values and compiled patterns."""

    values: tuple[str, ...] = ()
    patterns: tuple[Any, ...] = ()  # regex.Pattern: the ``regex`` package, for its search timeout


def user_secrets(lines: Iterable[str] | str = ()) -> UserSecrets:
    """Parse ``eval_redact`` lines (``re:<regex>`` or a literal value); raises ``SettingsError`` naming the line."""
    values: list[str] = []
    patterns: list[Any] = []
    for line in [lines] if isinstance(lines, str) else lines:
        line = str(line).strip()
        if not line.startswith(REGEX_PREFIX):
            if line:
                values.append(line)
            continue
        source = line[len(REGEX_PREFIX):]
        try:
            pattern = regex.compile(source)
        except regex.error as error:
            raise SettingsError(f"{USER_LIST} line {line!r}: not a valid regular expression ({error}); fix it "
                                "(Python re syntax) or drop the 're:' prefix to redact the text literally") from None
        if pattern.search(""):
            raise SettingsError(f"{USER_LIST} line {line!r}: the pattern matches the empty string, so it would "
                                "redact nothing useful; make it match the secret itself, e.g. re:acct-[0-9]{6,}")
        patterns.append(pattern)
    return UserSecrets(tuple(values), tuple(patterns))


def _utf16_escaped(value: str, digits: str) -> str:
    units = value.encode("utf-16-be")
    return "".join("\\u" + format(int.from_bytes(units[i:i + 2], "big"), digits) for i in range(0, len(units), 2))


def _base64_cores(value: str) -> set[str]:
    """The base64 text that any encoding containing ``value`` contains, whatever its byte alignment.

    Base64 encodes 3 bytes per 4 characters, so which characters a value produces depends on where it
    starts; dropping 0, 1 or 2 leading bytes (and the trailing partial group) gives the three cores.
    """
    data = value.encode("utf-8")
    cores = set()
    for skip in range(3):
        chunk = data[skip:]
        chunk = chunk[: len(chunk) // 3 * 3]
        if len(chunk) >= 6:  # 8+ characters: rarer than chance in any text
            cores |= {base64.b64encode(chunk).decode("ascii"), base64.urlsafe_b64encode(chunk).decode("ascii")}
    return cores


def written_forms(value: str) -> dict[str, str]:
    """Each way ``value`` can appear once written -> the name of that encoding (for ``evalsuite scan``)."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    named = [
        (value, "as is"),
        (escaped, "JSON-escaped"),
        (json.dumps(value)[1:-1], "JSON-escaped"),
        (escaped.replace("/", "\\/"), "JSON-escaped"),
        (escaped.replace("<", "\\u003c"), "JSON-escaped"),  # JSON inside an HTML <script> (report.html)
        (_utf16_escaped(value, "04x"), "JSON \\u-escaped"),
        (_utf16_escaped(value, "04X"), "JSON \\u-escaped"),
        (html.escape(value), "HTML-escaped"),
        (html.escape(value, quote=False), "HTML-escaped"),
        (html.escape(value, quote=False).replace('"', "&#34;").replace("'", "&#39;"), "HTML-escaped"),  # markupsafe
        (quote(value, safe=""), "URL-encoded"),
        (quote(value), "URL-encoded"),
        (quote_plus(value), "URL-encoded"),
        *((core, "base64") for core in sorted(_base64_cores(value))),
    ]
    forms: dict[str, str] = {}
    for form, name in named:
        forms.setdefault(form, name)
    return forms


class Scrubber:
    """The secrets looked up once, for scrubbing many texts (every header and body of a cassette, every report).

    ``redact``: the user's ``eval_redact`` lines. :meth:`learn` adds a value seen while scrubbing (the
    credential a request carried), so the answer echoing it is scrubbed too.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, redact: Sequence[str] = ()) -> None:
        self._placeholder: dict[str, str] = {}  # written form -> its replacement
        self._known: set[str] = set()
        user = user_secrets(redact)
        self.patterns = user.patterns
        for value, name in env_secrets(environ).items():
            self._add(value, placeholder(name))
        for value in user.values:
            self._add(value, placeholder(USER_LIST))
        self._compile()

    def _add(self, value: str, replacement: str) -> bool:
        if value in self._known:
            return False
        self._known.add(value)
        for form in written_forms(value):
            self._placeholder.setdefault(form, replacement)
        return True

    def _compile(self) -> None:
        forms = sorted(self._placeholder, key=len, reverse=True)  # longest first: no partial leftovers
        self._text = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._bytes = re.compile(b"|".join(re.escape(form.encode()) for form in forms)) if forms else None

    def learn(self, value: str, source: str) -> None:
        """Treat ``value`` (8+ characters) as a secret from now on, replaced by ``[REDACTED:<source>]``."""
        if len(value) >= MIN_SECRET_LENGTH and self._add(value, placeholder(source)):
            self._compile()

    def __bool__(self) -> bool:
        return bool(self._placeholder or self.patterns)

    def text(self, value: str) -> str:
        value = self.known(value)
        for pattern in self.patterns:
            try:
                value = pattern.sub(placeholder(USER_LIST), value, timeout=PATTERN_TIMEOUT_S)
            except TimeoutError:
                raise EvalsuiteError(
                    f"{USER_LIST} pattern {pattern.pattern!r} took over {PATTERN_TIMEOUT_S:g} s on a text of "
                    f"{len(value)} characters (catastrophic backtracking); nothing was written. Fix: rewrite it "
                    "without nested repetition, e.g. (a+)+ -> a+"
                ) from None
        return value

    def known(self, value: str) -> str:
        """Only the known values, in every written form: safe on a whole JSON or HTML document, where the user's
        patterns (``re:password=\\S+``) would run across the document's own syntax."""
        if self._text is None:
            return value
        return self._text.sub(lambda found: self._placeholder[found[0]], value)

    def data(self, value: bytes) -> bytes:
        """Bytes that are not UTF-8 text: every written form of the known values (patterns need text)."""
        if self._bytes is None:
            return value
        return self._bytes.sub(lambda found: self._placeholder[found[0].decode()].encode(), value)

    def structure(self, value: Any) -> Any:
        """A parsed JSON value with every string (keys included, at any nesting) scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.structure(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.structure(v) for v in value]
        return value


def scrub(text: str, environ: Mapping[str, str] | None = None, redact: Sequence[str] = ()) -> str:
    """``text`` with every secret of ``environ`` (default: ``os.environ``) and ``redact`` replaced, in any written form."""
    return Scrubber(environ, redact).text(text)
