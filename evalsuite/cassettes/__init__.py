"""Stage 4b: record and replay model calls with vcrpy cassettes, one JSON file per pytest item.

vcrpy does the recording and playback (its httpx/httpx2 transport patches are unchanged); this package
supplies what an LLM suite needs on top, through vcrpy's extension points (a ``Cassette`` subclass
used via ``EvalCassette.use(...)``, a persister and a serializer). One module per job, in the order a
request meets them: ``_keys`` (the match key), ``_redact`` (what is stored), ``_format`` (the file),
``_journal`` (crash safety), ``_cassette`` (index, playback, record modes, save policy), ``_use`` (the
context manager and the handle the engine and runner see); ``_options`` is the user's seam; ``_shards`` holds
what Spark tasks record (``engine: spark``) until the driver merges it.
"""

from evalsuite._util.record_modes import MODES
from evalsuite.cassettes._cassette import SENT_AT_HEADER
from evalsuite.cassettes._format import LATENCY_HEADER
from evalsuite.cassettes._keys import EXAMPLE_HEADER
from evalsuite.cassettes._options import CassetteOptions
from evalsuite.cassettes._shards import all_recorded, in_order, read_shard, remove_run, seed_from_earlier_attempts, shard_path
from evalsuite.cassettes._use import (
    CassetteHandle,
    Misses,
    is_not_recorded,
    not_recorded_reason,
    open_cassette,
    use_cassette,
)
from evalsuite.errors import CassetteError

__all__ = [
    "EXAMPLE_HEADER",
    "LATENCY_HEADER",
    "MODES",
    "SENT_AT_HEADER",
    "CassetteError",
    "CassetteHandle",
    "CassetteOptions",
    "Misses",
    "all_recorded",
    "in_order",
    "is_not_recorded",
    "not_recorded_reason",
    "open_cassette",
    "read_shard",
    "remove_run",
    "seed_from_earlier_attempts",
    "shard_path",
    "use_cassette",
]
