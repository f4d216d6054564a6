"""Stage 4: calls -> answers, live through a provider's SDK client or replayed from a cassette.

``answer_calls`` is the stage's door (the record-mode policy); providers are registered by name
with ``@provider("name")``; ``run_calls`` / ``run_calls_sync`` are the engine for scripts.
"""

from evalsuite.model._answer_calls import TRANSIENT_ERRORS, answer_calls, replay_calls
from evalsuite.model._engine import EngineSettings, run_calls, run_calls_sync
from evalsuite.model._pricing import estimate_cost, model_prices
from evalsuite.model._providers import Failure, Provider, get_provider, make_client, make_sync_client, provider
from evalsuite.model._wire import recorded_answer

__all__ = [
    "TRANSIENT_ERRORS",
    "EngineSettings",
    "Failure",
    "Provider",
    "answer_calls",
    "estimate_cost",
    "get_provider",
    "make_client",
    "make_sync_client",
    "model_prices",
    "provider",
    "recorded_answer",
    "replay_calls",
    "run_calls",
    "run_calls_sync",
]
