"""What is stored of an interaction: redacted, without volatile headers, without throttling.

Redaction (at record time, request and response, header names case-insensitive) follows the one
secret rule of :mod:`evalsuite._util.secrets`: credential headers (``authorization, api-key,
x-api-key, openai-organization, openai-project, cookie, set-cookie``) and query parameters
(``api-key, api_key, key``) become ``[REDACTED]``; any other header value, query value or response
body holding the value of a secret-looking environment variable has it replaced by
``[REDACTED:<NAME>]``. Volatile request headers are dropped: ``x-stainless-*``, ``user-agent``,
``x-evalsuite-sent-at``, ``host``, ``content-length``, ``connection``, ``accept-encoding``; and the
response headers ``date`` and ``content-length`` (bodies are re-serialised). The request header
``x-evalsuite-example: <example_id>#<sample>`` is kept: it explains stale cassettes.

Throttling and server errors (429, 408, 409, 5xx) are never recorded, so replay never waits on a
recorded ``Retry-After``; other 4xx answers are recorded. Compressed bodies are decoded first.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from vcr.filters import decode_response
from vcr.request import HeadersDict, Request

from evalsuite._util.secrets import CREDENTIAL_HEADERS, CREDENTIAL_QUERY, REDACTED, Scrubber
from evalsuite.cassettes._keys import KeyMaker

DROPPED_REQUEST_HEADERS = frozenset(
    {"user-agent", "x-evalsuite-sent-at", "host", "content-length", "connection", "accept-encoding"}
)
DROPPED_RESPONSE_HEADERS = frozenset({"date", "content-length"})
NOT_RECORDED_STATUSES = frozenset({408, 409, 429})


class Redactor:
    """The built-in ``before_record_request``/``before_record_response`` of every evalsuite cassette."""

    def __init__(self, keys: KeyMaker) -> None:
        self.keys = keys
        self.scrubber = Scrubber()  # the environment is read once per cassette

    def request(self, request: Request) -> Request:
        """A redacted copy (the caller's request is left alone: it may still be sent or matched)."""
        headers = HeadersDict()
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in DROPPED_REQUEST_HEADERS or lower.startswith("x-stainless-"):
                continue
            headers[lower] = REDACTED if lower in CREDENTIAL_HEADERS else self.scrubber.text(str(value))
        uri = request.uri
        parsed = urlparse(uri)
        if parsed.query:
            pairs = parse_qsl(parsed.query, keep_blank_values=True)
            clean = [(k, REDACTED if k.lower() in CREDENTIAL_QUERY else self.scrubber.text(v)) for k, v in pairs]
            if clean != pairs:
                uri = urlunparse(parsed._replace(query=urlencode(clean)))
        copy = Request(request.method, uri, request.body, headers)
        self.keys.remember(copy, self.keys.of_request(request))  # redaction never touches what is matched
        return copy

    def response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        status = response["status"]["code"]
        if status in NOT_RECORDED_STATUSES or status >= 500:
            return None
        response = decode_response(response)
        headers = {}
        for name, values in response["headers"].items():
            lower = name.lower()
            if lower in DROPPED_RESPONSE_HEADERS:
                continue
            headers[lower] = [REDACTED if lower in CREDENTIAL_HEADERS else self.scrubber.text(str(v)) for v in values]
        body = response["body"]["string"]
        if self.scrubber and body:
            body = self.scrubber.data(body) if isinstance(body, bytes) else self.scrubber.text(body)
        return {**response, "headers": headers, "body": {"string": body}}
