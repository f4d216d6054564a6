"""Stage 4: calls -> answers, live through a provider's SDK client or replayed from a cassette."""

from evalsuite.model._engine import EngineSettings, replay_calls, run_calls, run_calls_sync
from evalsuite.model.providers import MissingCredentials, make_client

__all__ = ["EngineSettings", "MissingCredentials", "make_client", "replay_calls", "run_calls", "run_calls_sync"]
