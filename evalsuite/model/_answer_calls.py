"""The stage's record-mode policy: what a cassette answers, and which calls must be sent live.

Every mode but ``all`` and ``rewrite`` first answers each call straight from the cassette's index, without the
HTTP stack (a round trip through the SDK and a transport costs ~2 ms a call, 50 s of pure overhead for 25k
examples). A call the cassette cannot answer is "not_recorded" where nothing may be recorded (``none``, and
``once`` over a cassette that exists) and is sent live otherwise, so ``new_episodes`` resumes an interrupted
recording by sending only what is missing. ``all`` and ``rewrite`` send every call. The recorded body becomes
an Answer through the same reader as a live response.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.cassettes import CassetteHandle
from evalsuite.model._wire import recorded_answer
from evalsuite.records import Answer, Call, ErrorKind

# Failures that say nothing about the request: a re-recording keeps the example's previous recording.
TRANSIENT_ERRORS: frozenset[ErrorKind] = frozenset({"rate_limited", "timeout", "connection", "endpoint",
                                                    "interrupted", "not_run"})


def recorded_answers(calls: Sequence[Call], cassette: CassetteHandle, endpoint: str) -> tuple[list[Answer | None], list[int]]:
    """(one Answer per call the cassette settles, None for the others; the indices of the calls to send live)."""
    answers: list[Answer | None] = [None] * len(calls)
    to_send: list[int] = []
    for index, call in enumerate(calls):
        response = cassette.play(call, endpoint) if cassette.replays else None
        if response is not None:
            answers[index] = recorded_answer(call, response)
        elif cassette.write_protected:
            answers[index] = Answer(call.example_id, call.sample, error="no recording of this request in the cassette",
                                    error_kind="not_recorded")
        else:
            to_send.append(index)
    return answers, to_send
