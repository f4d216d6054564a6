"""What user code may add to a cassette (the ``pytest_evalsuite_cassette`` hook hands it over)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vcr.request import Request

from evalsuite.cassettes._keys import BodyNormalizer


@dataclass
class CassetteOptions:
    """Extra redaction, filtering and matching for one cassette, on top of the built-in ones.

    ``before_record_request`` / ``before_record_response`` run, in order, after the built-in
    redaction on what is about to be stored; returning None drops the interaction. They change what
    is stored, not what is matched: a filter that edits the request body needs a ``match_body``
    normalizer making the same edit, or the stored request no longer matches the live one.

    ``match_body`` normalizers take a request's parsed JSON body (a shallow copy) and return the
    body to match on, e.g. ``lambda body: {k: v for k, v in body.items() if k != "seed"}``. They
    apply to recorded and live requests and to the engine's direct replay alike.

    ``redact`` adds secrets to the built-in redaction, in the syntax of the ``eval_redact`` ini key:
    each a literal value or ``re:<regex>``, replaced by ``[REDACTED:eval_redact]``.
    """

    before_record_request: list[Callable[[Request], Request | None]] = field(default_factory=list)
    before_record_response: list[Callable[[dict[str, Any]], dict[str, Any] | None]] = field(default_factory=list)
    match_body: list[BodyNormalizer] = field(default_factory=list)
    redact: list[str] = field(default_factory=list)
