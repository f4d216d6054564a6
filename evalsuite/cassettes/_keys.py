"""The match key: the one place a request's identity in a cassette is computed and formatted.

Matching is on what determines the answer, nothing else: method + endpoint + canonical JSON body.
The endpoint is the path tail: ``chat/completions``, ``completions`` or ``responses`` (any ``/v1`` style
prefix dropped), or ``deployments/<name>/chat/completions`` for Azure (the deployment picks the model, so
it is kept); Azure's Responses API is ``openai/responses`` (its deployment is the body's ``model``).
Scheme, host and port are ignored, so a cassette recorded against one endpoint replays against another;
the ``api-version`` query parameter and the credential parameters are ignored, other query parameters
count. The body is parsed, integral top-level numbers become ints (``temperature`` ``1.0 == 1``), and the
top-level fields that do not change the answer are dropped (``user``, ``metadata``, ``stream_options``,
``store``, ``service_tier``, ``previous_response_id``, and ``n`` when it is 1; see
:func:`evalsuite.records.canonical_body`); everything else that shapes the answer stays, tools,
``tool_choice`` and ``response_format`` / ``text.format`` included, so a changed tool schema or output
schema is another request. Keys are sorted and hashed. A stored request whose body was redacted carries
``x-evalsuite-body-digest``, the digest of the body as sent (see ``_redact``), which is used instead of
hashing the stored body, so the same prompt still replays.

Custom matching (``CassetteOptions.match_body``) applies the user's normalizers to the parsed body
first, alike for recorded requests, live requests and the engine's direct replay of a ``Call``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlparse

import orjson

from evalsuite._util.secrets import CREDENTIAL_QUERY
from evalsuite.records import Call, body_hash

EXAMPLE_HEADER = "x-evalsuite-example"
BODY_DIGEST_HEADER = "x-evalsuite-body-digest"  # on a stored request whose body was redacted (see _redact)
IGNORED_QUERY = CREDENTIAL_QUERY | {"api-version"}
_DEPLOYMENT = re.compile(r"(?:^|/)deployments/([^/]+)/(.+)$")

BodyNormalizer = Callable[[dict[str, Any]], dict[str, Any]]


@functools.lru_cache(maxsize=64)
def endpoint_tail(path: str) -> str:
    """``/v1/chat/completions`` -> ``chat/completions``; idempotent, so a tail may be passed too."""
    deployment = _DEPLOYMENT.search(path)
    if deployment:
        return f"deployments/{deployment[1]}/{deployment[2]}"
    for tail in ("chat/completions", "completions"):
        if path.endswith("/" + tail) or path == tail:
            return tail
    return path.rsplit("/v1/", 1)[-1].lstrip("/")


def api_of(endpoint: str) -> str:
    if endpoint.endswith("chat/completions"):
        return "chat"
    if endpoint.endswith("responses"):
        return "responses"
    return "completions" if endpoint.endswith("completions") else endpoint


class RequestKey(NamedTuple):
    """What a request is, for matching (``key``) and for explaining misses (the rest)."""

    key: str
    api: str  # "chat" | "completions" | "responses" | other endpoint
    body_hash: str
    tag: str  # the x-evalsuite-example value ("<example_id>#<sample>"), "" if absent


def _format(method: str, endpoint: str, query: str, digest: str) -> str:
    """The match key string; every key, recorded, live or of a ``Call``, is formatted here."""
    return f"{method.upper()} {endpoint} {query or '-'} {digest}"


class KeyMaker:
    """Match keys under one set of body normalizers (none: the built-in key, what committed cassettes hold)."""

    def __init__(self, match_body: Sequence[BodyNormalizer] = ()) -> None:
        self.match_body = tuple(match_body)

    def body_digest(self, body: dict[str, Any]) -> str:
        for normalize in self.match_body:
            body = normalize(dict(body))  # a shallow copy: a normalizer may pop fields freely
        return body_hash(body)

    def call_digest(self, call: Call) -> str:
        return self.body_digest(call.body) if self.match_body else call.prompt_hash

    def of(self, method: str, uri: str, body: Any, headers: Any) -> RequestKey:
        """``body``: bytes/str as sent, or an already parsed JSON value."""
        endpoint, query = _endpoint_query(uri)
        digest = _header(headers, BODY_DIGEST_HEADER) or self._digest(body)  # stored redacted: keyed as sent
        tag = _header(headers, EXAMPLE_HEADER)
        return RequestKey(_format(method, endpoint, query, digest), api_of(endpoint), digest, tag)

    def _digest(self, body: Any) -> str:
        if isinstance(body, (bytes, str)):
            with suppress(ValueError):
                body = orjson.loads(body)
        if isinstance(body, dict):
            return self.body_digest(body)
        if isinstance(body, (bytes, str)) or body is None:  # not JSON: the exact bytes
            return hashlib.sha256(body.encode() if isinstance(body, str) else body or b"").hexdigest()
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()  # a JSON array or scalar

    def of_request(self, request: Any) -> RequestKey:
        """The key of a vcrpy ``Request``, cached on it: the transport asks twice (can play? play)."""
        cached = getattr(request, "_evalsuite_key", None)
        if cached is None or cached[0] is not self:
            cached = (self, self.of(request.method, request.uri, request.body, request.headers))
            request._evalsuite_key = cached
        key: RequestKey = cached[1]
        return key

    def remember(self, request: Any, key: RequestKey) -> None:
        """Give ``request`` a key known to be its own (a decoded or redacted copy of a keyed request)."""
        request._evalsuite_key = (self, key)

    def of_call(self, call: Call, endpoint: str) -> RequestKey:
        """The key the transport would compute for ``call`` sent to ``endpoint`` (any URL path the SDK calls)."""
        digest = self.call_digest(call)
        return RequestKey(_post_prefix(endpoint) + digest, call.api, digest, str(call.key))


@functools.lru_cache(maxsize=64)
def _endpoint_query(uri: str) -> tuple[str, str]:
    """(endpoint tail, the query parameters that count, encoded): a cassette's 25k requests share one or two URIs."""
    parsed = urlparse(uri)
    query = sorted((k, v) for k, v in parse_qsl(parsed.query, keep_blank_values=True) if k.lower() not in IGNORED_QUERY)
    return endpoint_tail(parsed.path), urlencode(query)


def _header(headers: Any, name: str) -> str:
    """A header's value, stored (a list) or live (a string); "" if absent."""
    value = headers.get(name, "") if headers is not None else ""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value)


@functools.lru_cache(maxsize=64)
def _post_prefix(endpoint: str) -> str:
    """The key of a POST to ``endpoint`` without query, up to its digest (the replay fast path's per-call cost)."""
    return _format("POST", endpoint_tail(endpoint), "", "")


BUILT_IN_KEYS = KeyMaker()
