"""The stage's one door: calls -> answers under a record mode, replayed from the index or sent live.

Mode ``none`` never builds an HTTP stack: each call is answered straight from the cassette's index
(an HTTP round trip through the SDK and vcrpy's transport costs ~2 ms a call, 50 s of pure overhead
for 25k examples). Every other mode sends through the engine, where the cassette records or replays
at the transport, and a re-recording keeps what an outage kept it from recording again.
"""

from __future__ import annotations

from collections.abc import Sequence

from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import CassetteHandle
from evalsuite.model._embeddings import EMBEDDINGS, embeddings_endpoint
from evalsuite.model._engine import EngineSettings, run_calls_sync
from evalsuite.model._pricing import Prices
from evalsuite.model._progress import Progress, current_sink
from evalsuite.model._providers import get_provider
from evalsuite.model._wire import recorded_answer
from evalsuite.records import Answer, Call, ErrorKind

# Failures that say nothing about the request: a re-recording keeps the example's previous recording.
TRANSIENT_ERRORS: frozenset[ErrorKind] = frozenset({"rate_limited", "timeout", "connection", "endpoint",
                                                    "interrupted"})


def answer_calls(
    calls: Sequence[Call],
    model: ModelSettings,
    cassette: CassetteHandle,
    *,
    record_mode: str,
    settings: EngineSettings | None = None,
    label: str = "",
    prices: Prices | None = None,
) -> list[Answer]:
    """One Answer per call, in order: replayed from ``cassette`` in mode ``none``, else sent live.

    ``label`` and ``prices`` feed the live progress line (``label  done/total ... ~$cost``), shown where
    :func:`~evalsuite.model._progress.progress_to` sends it (pytest's terminal), else on stderr.
    """
    if record_mode == "none":
        embeddings = bool(calls) and calls[0].api == EMBEDDINGS
        return replay_calls(calls, cassette, embeddings_endpoint(model) if embeddings else
                            get_provider(model.provider).endpoint(model))
    with Progress(label, len(calls), model=model.name, prices=prices, sink=current_sink()) as progress:
        answers = run_calls_sync(calls, model, settings=settings, progress=progress)
    cassette.keep_previous({a.example_id for a in answers if a.error_kind in TRANSIENT_ERRORS})
    return answers


def replay_calls(calls: Sequence[Call], cassette: CassetteHandle, endpoint: str) -> list[Answer]:
    """Answer every call from the cassette's index, without the HTTP stack; missing -> "not_recorded".

    The recorded body is turned into an Answer by the same reader as a live response.
    """
    answers = []
    for call in calls:
        response = cassette.play(call, endpoint)
        if response is None:
            answer = Answer(call.example_id, call.sample, error="no recording of this request in the cassette",
                            error_kind="not_recorded")
        else:
            answer = recorded_answer(call, response)
        answers.append(answer)
    return answers
