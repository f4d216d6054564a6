"""The breaker's states: closed, open (calls refused unsent), one probe after a pause."""

from __future__ import annotations

import pytest

from evalsuite.model import _breaker
from evalsuite.model._breaker import WAIT, Breaker, public_url


def opened(trip: _breaker.Trip = "not_found") -> Breaker:
    breaker = Breaker("https://user:pw@example.test:8443/v1/?api-key=abc", "dep1")
    for _ in range(_breaker.TRIP_AFTER[trip]):
        breaker.failed(object(), trip, "HTTP 404: no such deployment")
    return breaker


def test_the_url_in_messages_has_no_credentials_and_no_query() -> None:
    assert public_url("https://user:pw@example.test:8443/v1/?api-key=abc") == "https://example.test:8443/v1"
    message = opened().refusal(object()) or ""
    assert message.startswith("not sent: https://example.test:8443/v1 (model dep1) has no such path")
    azure = Breaker("https://r.openai.azure.com/openai/deployments/dep1/", "dep1")
    assert azure.url == "https://r.openai.azure.com/openai/deployments/dep1" and azure.what == "deployment dep1"
    assert "pw" not in message and "abc" not in message


def test_an_answer_between_failures_keeps_it_closed() -> None:
    breaker = Breaker("http://h/v1", "m")
    for _ in range(10):
        breaker.failed(object(), "connection", "refused")
        breaker.alive()  # e.g. a 200, or a 429: the endpoint is there
    assert breaker.refusal(object()) is None


def test_after_the_pause_one_call_probes_while_the_others_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    breaker = opened()
    monkeypatch.setattr(_breaker, "PROBE_AFTER_S", 0.0)
    probe, other = object(), object()
    assert breaker.refusal(probe) is None and breaker.refusal(probe) is None
    assert breaker.refusal(other) == WAIT
    breaker.failed(other, "not_found", "HTTP 404")  # a call sent before it opened: not the probe's outcome
    assert breaker.refusal(other) == WAIT
    breaker.failed(probe, "not_found", "HTTP 404")  # the probe failed: open again, from now
    monkeypatch.setattr(_breaker, "PROBE_AFTER_S", 60.0)
    assert "the probe after a pause failed" in (breaker.refusal(other) or "")
    monkeypatch.setattr(_breaker, "PROBE_AFTER_S", 0.0)
    assert breaker.refusal(other) is None
    breaker.abandon(other)  # interrupted: the next call may probe
    assert breaker.refusal(probe) is None
    breaker.alive()
    assert breaker.refusal(other) is None and breaker.opened is None
