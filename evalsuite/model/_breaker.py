"""A circuit breaker per endpoint: a dead or wrong endpoint fails in seconds, not hours.

Without it every call retries on its own: a refused port cost ~130 s of backoff per example, so
1,000 examples at concurrency 16 took about two hours before the item failed. The breaker counts
failures in a row that say "this endpoint cannot answer any call" (connection errors such as refused,
DNS or TLS; timeouts; 401/403; 404; a non-JSON 2xx such as a proxy's HTML page; a run of 5xx) and
opens after a few of them. While open, calls are answered at once as errors of kind "connection"
(nothing reached the endpoint, so a re-recording keeps what the cassette had), never sent: the item
stops, and later items on the same endpoint (base URL and model, shared by the whole process like
the learned concurrency limits in ``_admission``) fail fast too. After ``PROBE_AFTER_S`` one call
is let through as a probe while the others wait for it: an answer closes the breaker, a failure
opens it again.

Any other response (2xx, 429, 400, ...) proves the endpoint is alive and resets the counts: rate
limits are the admission gate's business, not the breaker's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Trip = Literal["connection", "timeout", "auth", "not_found", "not_json", "server"]

# Failures in a row (no live answer between them) that open the breaker. Definitive answers (a wrong
# key, path or model) need fewer than conditions that can pass (a restart, an overloaded server).
TRIP_AFTER: dict[Trip, int] = {"connection": 5, "timeout": 5, "auth": 3, "not_found": 3, "not_json": 3, "server": 10}
PROBE_AFTER_S = 30.0  # an open breaker lets one call through after this long
WAIT = "wait"  # a probe is in flight: ask again shortly (no message is this short)

_WHAT: dict[Trip, str] = {
    "connection": "cannot be reached",
    "timeout": "does not answer in time",
    "auth": "rejects the credentials",
    "not_found": "has no such path, model or deployment",
    "not_json": "does not answer with the API's JSON",
    "server": "keeps failing with server errors",
}
_FIX: dict[Trip, str] = {
    "connection": "check that the server is up and the URL (model.base_url, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT)",
    "timeout": "check that the server is up, or raise model.timeout",
    "auth": "check the key (OPENAI_API_KEY or AZURE_OPENAI_API_KEY) and its access to this model",
    "not_found": "check the URL (model.base_url, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT; an OpenAI-compatible "
                 "one usually ends in /v1) and the model or deployment name (model.name, --eval-model)",
    "not_json": "check the URL: a proxy, login page or web server answered instead of the API",
    "server": "the endpoint is failing: retry later, or lower --eval-concurrency",
}


def public_url(url: str) -> str:
    """``url`` without credentials or query string (an ``api-key`` may travel there), fit for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass
class _Opened:
    message: str
    at: float


class Breaker:
    """The state of one endpoint: failures in a row per trip, and why it is open (None: closed)."""

    def __init__(self, url: str, model: str) -> None:
        self.url = public_url(url)
        self.model = model
        self.what = f"deployment {model}" if "/deployments/" in self.url else f"model {model}"  # Azure: in the path
        self.in_a_row: Counter[Trip] = Counter()
        self.opened: _Opened | None = None
        self.prober: object | None = None  # the call let through as the probe, while it is in flight
        self._lock = threading.Lock()  # run_calls_sync may run event loops in several threads

    def refusal(self, call: object) -> str | None:
        """None: send ``call`` (closed, or it is the probe); ``WAIT`` while another call probes;
        else the error message to answer it with, unsent."""
        with self._lock:
            opened = self.opened
            if opened is None or self.prober is call:
                return None
            if self.prober is not None:
                return WAIT
            if time.monotonic() - opened.at >= PROBE_AFTER_S:
                self.prober = call
                return None
            return opened.message

    def alive(self) -> None:
        """The endpoint answered (any response that is not a trip): close, reset the counts."""
        with self._lock:
            self.in_a_row.clear()
            self.opened = None
            self.prober = None

    def abandon(self, call: object) -> None:
        """``call`` ended without an outcome (interrupted): if it was the probe, another may probe."""
        with self._lock:
            if self.prober is call:
                self.prober = None

    def failed(self, call: object, trip: Trip | None, message: str) -> None:
        """``call`` failed; ``trip`` None (e.g. not in the cassette) says nothing about the endpoint."""
        with self._lock:
            probing = self.prober is call
            if probing:
                self.prober = None
            if trip is None:
                return
            self.in_a_row[trip] += 1
            count = self.in_a_row[trip]
            if probing or (self.opened is None and count >= TRIP_AFTER[trip]):
                reason = "the probe after a pause failed" if probing else f"{count} calls in a row failed"
                self.opened = _Opened(
                    f"not sent: {self.url} ({self.what}) {_WHAT[trip]} ({reason}; last: {message}), so this "
                    f"session stopped calling it. Fix: {_FIX[trip]}",
                    time.monotonic())


_breakers: dict[tuple[str, str], Breaker] = {}
_registry_lock = threading.Lock()


def breaker_for(url: str, model: str) -> Breaker:
    """The process-wide breaker of one endpoint (base URL and model or deployment)."""
    key = (public_url(url), model)
    with _registry_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = _breakers[key] = Breaker(url, model)
        return breaker


def reset_breakers() -> None:
    """Forget every endpoint's state (tests; a long-lived process that fixed its configuration)."""
    with _registry_lock:
        _breakers.clear()
