"""Stage 4: calls -> answers, live through a provider's SDK client or replayed from a cassette.

``recorded_answers`` is the record-mode policy (what a cassette answers, what must be sent), ``answer_calls`` that
policy for one batch on an engine of its own (a metric's calls); the
:class:`Engine` sends :class:`Job` s of calls with one admission budget per endpoint (the session
scheduler keeps one for a whole pytest session); ``run_calls`` / ``run_calls_sync`` are the engine for
scripts. Providers are registered by name with ``@provider("name")``.
"""

from evalsuite.model._answer_calls import TRANSIENT_ERRORS, answer_calls, finish_cassette, recorded_answers
from evalsuite.model._engine import Engine, EngineSettings, Job, run_calls, run_calls_sync
from evalsuite.model._pricing import estimate_cost, model_prices, price_per_1k
from evalsuite.model._providers import Failure, Provider, get_provider, make_client, make_sync_client, provider
from evalsuite.model._spend import SpendGuard

__all__ = [
    "TRANSIENT_ERRORS",
    "Engine",
    "EngineSettings",
    "Failure",
    "Job",
    "Provider",
    "SpendGuard",
    "answer_calls",
    "finish_cassette",
    "estimate_cost",
    "get_provider",
    "make_client",
    "make_sync_client",
    "model_prices",
    "price_per_1k",
    "provider",
    "recorded_answers",
    "run_calls",
    "run_calls_sync",
]
