"""The stage's record-mode policy: what a cassette answers, and which calls must be sent live.

Every mode but ``all`` and ``rewrite`` first answers each call straight from the cassette's index, without the
HTTP stack (a round trip through the SDK and a transport costs ~2 ms a call, 50 s of pure overhead for 25k
examples). A call the cassette cannot answer is "not_recorded" where nothing may be recorded (``none``, and
``once`` over a cassette that exists) and is sent live otherwise, so ``new_episodes`` resumes an interrupted
recording by sending only what is missing. ``all`` and ``rewrite`` send every call. The recorded body becomes
an Answer through the same reader as a live response.

The session scheduler applies :func:`recorded_answers` to every item and sends the rest on its shared engine (or
from Spark tasks, each of which applies it to its own shard); :func:`answer_calls` is the same policy for one
batch on an engine of its own (a metric's judge or embeddings calls).
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import CassetteHandle, Misses
from evalsuite.model._engine import EngineSettings, run_calls_sync
from evalsuite.model._pricing import Prices
from evalsuite.model._progress import Progress, current_sink
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


def answer_calls(
    calls: Sequence[Call],
    model: ModelSettings,
    cassette: CassetteHandle,
    endpoint: str,
    *,
    settings: EngineSettings | None = None,
    label: str = "",
    prices: Prices | None = None,
) -> list[Answer]:
    """One Answer per call, in order: what ``cassette`` (opened with ``open_cassette``) settles, the rest sent live
    on an engine of its own and recorded into it. The caller ends with :func:`finish_cassette`.

    ``label`` and ``prices`` feed the live progress line (``label  done/total ... ~$cost``), shown where
    :func:`~evalsuite.model._progress.progress_to` sends it (pytest's terminal), else on stderr.
    """
    answers, to_send = recorded_answers(calls, cassette, endpoint)
    if to_send:
        with Progress(label, len(to_send), model=model.name, prices=prices, sink=current_sink()) as progress:
            sent = run_calls_sync([calls[i] for i in to_send], model, settings=settings, progress=progress,
                                  record=cassette.record)
        for index, answer in zip(to_send, sent):
            answers[index] = answer
    return [answer for answer in answers if answer is not None]


def finish_cassette(cassette: CassetteHandle, calls: Sequence[Call], answers: Sequence[Answer], *, provider: str = "",
                    endpoint: str = "") -> Misses | None:
    """Save ``cassette`` once every call has its answer, and say why calls had no recording (None: all had one).

    A transient failure never erases the example's previous recording (``rewrite``); a batch cut short
    ("interrupted") merges everything journaled into the file, as the next run would."""
    transient = {a.example_id for a in answers if a.error_kind in TRANSIENT_ERRORS}
    if transient:
        cassette.keep_previous(transient)
    misses = (cassette.explain_misses(calls, provider=provider, endpoint=endpoint)
              if any(a.error_kind == "not_recorded" for a in answers) else None)
    if any(a.error_kind == "interrupted" for a in answers):
        cassette.save_interrupted()
    else:
        cassette.save()
    return misses
