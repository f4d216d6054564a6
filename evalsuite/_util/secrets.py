"""The one secret rule, shared by cassettes (at record time) and report files (as a last line of defence).

A secret is the value (8+ characters) of an environment variable whose upper-cased name contains
KEY, TOKEN, SECRET or PASSWORD, or the value of a credential header or query parameter. It is
replaced by one placeholder scheme: ``[REDACTED:<ENV_NAME>]`` where the environment names it, else
``[REDACTED]`` (a credential header's own name already says what it held). Square brackets survive
JSON, HTML and Markdown unchanged, so the placeholder stays visible in every file it is written to.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping

SECRET_NAME = re.compile("KEY|TOKEN|SECRET|PASSWORD")
MIN_SECRET_LENGTH = 8  # shorter values (e.g. "true", a port) would scrub ordinary text
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-organization", "openai-project", "cookie", "set-cookie"}
)
CREDENTIAL_QUERY = frozenset({"api-key", "api_key", "key"})
REDACTED = "[REDACTED]"


def placeholder(env_name: str | None = None) -> str:
    """What replaces a secret: names the environment variable that held it, when one did."""
    return f"[REDACTED:{env_name}]" if env_name else REDACTED


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


def _written_forms(value: str) -> set[str]:
    """How a value can appear once written: as is, JSON-escaped (with and without ASCII escapes), HTML-escaped."""
    return {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], html.escape(value)}


class Scrubber:
    """The environment's secrets looked up once, for scrubbing many texts (every header and body of a cassette)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        pairs = {form: placeholder(name) for value, name in env_secrets(environ).items() for form in _written_forms(value)}
        self.replacements = sorted(pairs.items(), key=lambda pair: -len(pair[0]))  # longest first: no partial leftovers
        self._encoded = [(form.encode(), text.encode()) for form, text in self.replacements]

    def __bool__(self) -> bool:
        return bool(self.replacements)

    def text(self, value: str) -> str:
        for form, text in self.replacements:
            if form in value:
                value = value.replace(form, text)
        return value

    def data(self, value: bytes) -> bytes:
        for form, text in self._encoded:
            if form in value:
                value = value.replace(form, text)
        return value


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret of ``environ`` (default: ``os.environ``) replaced, in any written form."""
    return Scrubber(environ).text(text)

