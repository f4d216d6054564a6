"""What is stored of an interaction: redacted, without volatile headers, without throttling.

Redaction follows the one secret rule of :mod:`evalsuite._util.secrets` and runs at record time,
before the interaction reaches the journal or the cassette file, on the request and the response:

- credential headers (``authorization, api-key, x-api-key, openai-organization, openai-project,
  cookie, set-cookie, ...``; names case-insensitive) and credential query parameters (``api-key,
  api_key, key, token, sig, ...``) become ``[REDACTED]``; the values a request sent in them are learned
  as secrets, so a body echoing the key, organization or project id has it replaced by
  ``[REDACTED:<header>]``;
- every other header value and query value, and every body, has each secret replaced. JSON bodies
  (error bodies included, and the ``data:`` lines of a stream) are parsed and every string at any
  nesting is scrubbed *decoded*: a server writing a secret as ``\\u0065...`` or ``\\"`` cannot hide it.
  Other bodies are scrubbed as text in every written form of each secret.

A redacted request body is no longer the body that was sent, so the key it is matched by would
change on reload: the stored request then carries ``x-evalsuite-body-digest`` (the digest of the
body as sent, :data:`~evalsuite.cassettes._keys.BODY_DIGEST_HEADER`), and replay with the same
prompt still matches. Volatile request headers are dropped: ``x-stainless-*``, ``user-agent``,
``x-evalsuite-sent-at``, ``host``, ``content-length``, ``connection``, ``accept-encoding``; and the
response headers ``date`` and ``content-length`` (bodies are re-serialised). The request header
``x-evalsuite-example: <example_id>#<sample>`` is kept: it explains stale cassettes.

Throttling and server errors (429, 408, 409, 5xx) are never recorded, so replay never waits on a
recorded ``Retry-After``; other 4xx answers are recorded. Compressed bodies are decoded first.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import orjson
from vcr.filters import decode_response
from vcr.request import HeadersDict, Request

from evalsuite._util.secrets import CREDENTIAL_HEADERS, CREDENTIAL_QUERY, REDACTED, Scrubber, user_secrets
from evalsuite.cassettes._keys import BODY_DIGEST_HEADER, KeyMaker

DROPPED_REQUEST_HEADERS = frozenset(
    {"user-agent", "x-evalsuite-sent-at", "host", "content-length", "connection", "accept-encoding"}
)
DROPPED_RESPONSE_HEADERS = frozenset({"date", "content-length"})
NOT_RECORDED_STATUSES = frozenset({408, 409, 429})


def credential_values(header: str, value: str) -> list[str]:
    """The secret parts of a request's credential header: the token after ``Bearer``, Basic's password, cookie values."""
    if header in ("authorization", "proxy-authorization"):
        scheme, _, token = value.strip().partition(" ")
        token = token.strip() or scheme
        found = [token]
        if scheme.lower() == "basic":
            with suppress(binascii.Error, UnicodeDecodeError):
                found.append(base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2])
        return found
    if header == "cookie":
        return [pair.partition("=")[2].strip() for pair in value.split(";")]
    return [value.strip()]


class Redactor:
    """The built-in ``before_record_request``/``before_record_response`` of every evalsuite cassette.

    ``redact``: the user's ``eval_redact`` lines (literal values and ``re:`` patterns).
    """

    def __init__(self, keys: KeyMaker, redact: Sequence[str] = ()) -> None:
        self.keys = keys
        self.redact = tuple(redact)
        user_secrets(self.redact)  # a bad line fails when the cassette opens, not on its first recording

    @functools.cached_property
    def scrubber(self) -> Scrubber:
        """The environment read once per cassette, when it first records: replay never pays for it."""
        return Scrubber(redact=self.redact)

    def _learn(self, headers: Iterable[tuple[str, str]]) -> None:
        for name, value in headers:
            lower = name.lower()
            if lower in CREDENTIAL_HEADERS and str(value) != REDACTED:  # a stored request (a shard's) is redacted already
                for secret in credential_values(lower, str(value)):
                    self.scrubber.learn(secret, lower)

    def request(self, request: Request) -> Request:
        """A redacted copy (the caller's request is left alone: it may still be sent or matched)."""
        self._learn(request.headers.items())
        uri = self._uri(request.uri)  # learns the credential parameters too, before the body is scrubbed
        headers = HeadersDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in DROPPED_REQUEST_HEADERS or lower.startswith("x-stainless-"):
                continue
            headers[lower] = REDACTED if lower in CREDENTIAL_HEADERS else self.scrubber.text(str(value))
        key = self.keys.of_request(request)
        body = self._body(request.body)
        if body != request.body:
            headers[BODY_DIGEST_HEADER] = key.body_hash  # the stored body is not what was sent: keep its key
        copy = Request(request.method, uri, body, headers)
        self.keys.remember(copy, key)  # redaction never touches what is matched
        return copy

    def _uri(self, uri: str) -> str:
        parsed = urlparse(uri)
        if not parsed.query:
            return uri
        pairs = parse_qsl(parsed.query, keep_blank_values=True)
        for name, value in pairs:
            if name.lower() in CREDENTIAL_QUERY:
                self.scrubber.learn(value, name.lower())
        clean = [(k, REDACTED if k.lower() in CREDENTIAL_QUERY else self.scrubber.text(v)) for k, v in pairs]
        return uri if clean == pairs else urlunparse(parsed._replace(query=urlencode(clean)))

    def response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        status = response["status"]["code"]
        if status in NOT_RECORDED_STATUSES or status >= 500:
            return None
        # Its credential headers are redacted but not learned: an organization *name* there (e.g. "personal")
        # is an ordinary word that answers may hold.
        response = decode_response(response)
        headers = {}
        for name, values in response["headers"].items():
            lower = name.lower()
            if lower in DROPPED_RESPONSE_HEADERS:
                continue
            headers[lower] = [REDACTED if lower in CREDENTIAL_HEADERS else self.scrubber.text(str(v)) for v in values]
        return {**response, "headers": headers, "body": {"string": self._body(response["body"]["string"])}}

    def _body(self, body: bytes | str | None) -> bytes | str | None:
        """``body`` itself when it holds no secret, else its scrubbed copy (same type)."""
        if not body or not self.scrubber:
            return body
        if isinstance(body, bytes):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return self.scrubber.data(body)
        else:
            text = body
        clean = self._text(text)
        if clean == text:
            return body
        return clean.encode("utf-8") if isinstance(body, bytes) else clean

    def _text(self, text: str) -> str:
        scrubbed = self._json(text)
        if scrubbed is not None:
            return scrubbed
        if "data:" in text:  # a stream: one JSON document per data: line
            return "".join(self._stream_line(line) for line in text.splitlines(keepends=True))
        return self.scrubber.text(text)

    def _json(self, text: str) -> str | None:
        """The JSON document with every decoded string scrubbed (re-serialised only if one changed); None if not JSON."""
        if text.lstrip()[:1] not in ("{", "["):
            return None
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        clean = self.scrubber.structure(parsed)
        return text if clean == parsed else orjson.dumps(clean).decode("utf-8")

    def _stream_line(self, line: str) -> str:
        if not line.startswith("data:"):
            return self.scrubber.text(line)
        payload = line[len("data:"):]
        ending = payload[len(payload.rstrip("\r\n")):]
        document = payload.strip()
        scrubbed = self._json(document)
        if scrubbed is None:
            return self.scrubber.text(line)
        return line if scrubbed == document else f"data: {scrubbed}{ending}"
