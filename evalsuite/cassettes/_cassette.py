"""The cassette policy: an O(1) index for replay, recording through redaction and a journal, save rules.

Replay is O(1) per request. Stock vcrpy scans every interaction twice per request and runs every
matcher (quadratic; 1,000 body-matched interactions took 232 s). ``EvalCassette`` indexes
interactions by match key (key -> deque of unplayed indices), so ``can_play_response_for``,
``play_response``, ``__contains__`` and ``append`` are dictionary operations. Identical requests (N
samples of one example) are all recorded and each recording is played once, in recorded order; a
request whose ``x-evalsuite-example`` tag matches a recording with the same key gets that recording
first, so sample k replays sample k's answer even when the samples completed out of order.

Latency: the engine's ``x-evalsuite-sent-at: <time.time()>`` request header gives it, stored as the
response header ``x-evalsuite-latency-ms`` so replay reports the recorded latency.

Modes: ``none`` (replay only), ``once`` (record only when the file does not exist), ``new_episodes``
(replay, record what is missing), ``all`` (send everything, recordings replace the ones with the same
key, unused ones are kept), ``rewrite`` (send everything; the saved file holds only this run's
interactions; the old file stays intact until the run completes).

vcrpy has no public seam for a cassette's loading and saving, so ``_load``/``_save`` are overridden
(vcrpy is pinned to the tested majors in pyproject.toml: 9 and, on Python 3.10, 8.5+); everything else goes through
vcrpy's constructor arguments and its public ``Cassette`` methods.
"""

from __future__ import annotations

import collections
import gc
import threading
import time
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from vcr.cassette import Cassette
from vcr.errors import UnhandledHTTPRequestError
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.request import Request

import evalsuite
from evalsuite.cassettes._embeddings import is_embeddings
from evalsuite.cassettes._format import (
    LATENCY_HEADER,
    AtomicPersister,
    JsonSerializer,
    encode_interaction,
    gc_paused,
    is_completion,
)
from evalsuite.cassettes._journal import Journal, recover_journal
from evalsuite.cassettes._keys import BUILT_IN_KEYS, KeyMaker, RequestKey
from evalsuite.cassettes._options import CassetteOptions
from evalsuite.cassettes._redact import Redactor
from evalsuite.errors import CassetteError
from evalsuite.records import SampleKey

_RECORD_MODE = {
    "none": RecordMode.NONE,
    "once": RecordMode.ONCE,
    "new_episodes": RecordMode.NEW_EPISODES,
    "all": RecordMode.ALL,
    "rewrite": RecordMode.ALL,
}
SENT_AT_HEADER = "x-evalsuite-sent-at"

Interaction = tuple[Request, dict[str, Any]]


def _is_completion(response: dict[str, Any]) -> bool:
    """Only a 2xx completion's JSON (a Responses API response's, or an embeddings list's) is recorded: a 401, a 404
    or a proxy's HTML page would replay an outage."""
    if not 200 <= response["status"]["code"] < 300:
        return False
    try:
        data = orjson.loads(response["body"]["string"] or b"")
    except orjson.JSONDecodeError:
        return False
    return is_completion(data) or is_embeddings(data)


class EvalCassette(Cassette):
    """vcrpy ``Cassette`` with an O(1) index by match key, a crash journal and evalsuite metadata."""

    def __init__(
        self, path: str, *, evalsuite_mode: str, new_metadata: dict[str, Any], options: CassetteOptions, **kwargs: Any
    ) -> None:
        self.keys = KeyMaker(options.match_body) if options.match_body else BUILT_IN_KEYS
        self._redactor = Redactor(self.keys, options.redact)
        self.options = options
        super().__init__(
            path,
            serializer=JsonSerializer,
            persister=AtomicPersister,
            record_mode=_RECORD_MODE[evalsuite_mode],
            match_on=(self._same_request,),
            before_record_request=self._stored_request,
            before_record_response=self._stored_response,
            allow_playback_repeats=False,
            **kwargs,
        )
        self.evalsuite_mode = evalsuite_mode
        self.new_metadata = new_metadata
        self.recorded_metadata: dict[str, Any] = {}
        self.infos: list[RequestKey] = []  # parallel to self.data
        self.recovered = 0
        self.n_recorded = 0
        self.n_played = 0
        self.saved_count: int | None = None
        self._unplayed: dict[str, collections.deque[int]] = {}
        self._unplayed_tagged: dict[tuple[str, str], collections.deque[int]] = {}
        self._available: collections.Counter[str] = collections.Counter()
        self._by_key: dict[str, list[int]] = {}  # every interaction, for "not in cassette" messages
        self._by_tag: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._journal = Journal(Path(path))
        self._previous: list[tuple[Interaction, RequestKey]] = []  # rewrite: the file being replaced
        self.keep_examples: set[str] = set()  # rewrite: examples whose previous recordings survive the save

    # loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        with gc_paused():
            self._load_indexed()
        # Collections during the block skip what is alive now (the recording, the item's examples and calls: a
        # third of a 25k replay's time went to re-scanning them); ``release`` unfreezes it, so a reference cycle
        # that dies meanwhile is still collected then.
        gc.freeze()

    def _load_indexed(self) -> None:
        self.recovered = recover_journal(Path(self._path), self.keys)
        try:
            requests, responses, metadata = self._persister.load_cassette(self._path, serializer=self._serializer)
        except CassetteNotFoundError:
            return
        except CassetteError:
            if self.evalsuite_mode == "rewrite":  # re-recording is the fix for a corrupt file
                return
            raise
        if self.evalsuite_mode == "rewrite":  # re-record from scratch; kept aside, never played back
            self._previous = [((q, r), self.keys.of_request(q)) for q, r in zip(requests, responses, strict=True)]
            return
        for request, response in zip(requests, responses, strict=True):
            index = len(self.data)
            info = self._add(request, response)
            self._unplayed.setdefault(info.key, collections.deque()).append(index)
            if info.tag:
                self._unplayed_tagged.setdefault((info.key, info.tag), collections.deque()).append(index)
            self._available[info.key] += 1
        self._loaded_count = len(self.data)
        self._metadata = dict(metadata)
        self.recorded_metadata = dict(metadata)
        self.rewound = True
        self.dirty = False

    def _add(self, request: Request, response: dict[str, Any]) -> RequestKey:
        info = self.keys.of_request(request)
        self._by_key.setdefault(info.key, []).append(len(self.data))
        if info.tag:
            self._by_tag.setdefault(info.tag, []).append(len(self.data))
        self.data.append((request, response))
        self.infos.append(info)
        return info

    # playback ---------------------------------------------------------------------------------

    def __contains__(self, request: Request) -> bool:
        return self._available[self.keys.of_request(request).key] > 0

    def can_play_response_for(self, request: Request) -> bool:
        return self.record_mode != RecordMode.ALL and request in self

    def play_response(self, request: Request) -> dict[str, Any]:
        response = self.play(self.keys.of_request(request))
        if response is None:
            raise UnhandledHTTPRequestError(
                f"The cassette ({self._path!r}) doesn't contain the request ({request!r}) asked for"
            )
        return response

    def play(self, info: RequestKey) -> dict[str, Any] | None:
        """The next unplayed recording for this match key (the tagged sample first), marked as played."""
        with self._lock:
            index = self._next_unplayed(self._unplayed_tagged.get((info.key, info.tag))) if info.tag else None
            if index is None:
                index = self._next_unplayed(self._unplayed.get(info.key))
            if index is None:
                return None
            self.play_counts[index] += 1
            self._available[info.key] -= 1
            self.n_played += 1
            response: dict[str, Any] = self.data[index][1]
            return response

    def _next_unplayed(self, indices: collections.deque[int] | None) -> int | None:
        while indices:
            index = indices.popleft()
            if not self.play_counts[index]:
                return index
        return None

    def find_requests_with_most_matches(self, request: Request) -> list[tuple[Request, list[str], list[tuple[str, str]]]]:
        """For vcrpy's "not in cassette" message: recordings of the same key (all played) or example."""
        info = self.keys.of_request(request)
        same_key = [self.data[i][0] for i in self._by_key.get(info.key, [])[:3]]
        if same_key:
            return [(r, ["same_request"], []) for r in same_key]
        same_example = [self.data[i][0] for i in self._by_tag.get(info.tag, [])[:3]] if info.tag else []
        why = "recorded with another prompt, parameters, model or endpoint (the item's message says which)"
        return [(r, ["method"], [("body", why)]) for r in same_example]

    def _same_request(self, r1: Request, r2: Request) -> None:
        """vcrpy matcher (used only by vcrpy's own linear helpers): equal match keys."""
        if self.keys.of_request(r1).key != self.keys.of_request(r2).key:
            raise AssertionError("method, endpoint or canonical body differ")

    # recording --------------------------------------------------------------------------------

    def _stored_request(self, request: Request) -> Request | None:
        stored: Request | None = self._redactor.request(request)
        for user_filter in self.options.before_record_request:
            stored = user_filter(stored) if stored is not None else None
        if stored is not None and self.options.before_record_request:
            stored._evalsuite_key = None  # a filter may have edited it: key what is stored, as a reload will
        return stored

    def _stored_response(self, response: dict[str, Any]) -> dict[str, Any] | None:
        stored = self._redactor.response(response)
        if stored is not None and not _is_completion(stored):
            return None
        for user_filter in self.options.before_record_response:
            stored = user_filter(stored) if stored is not None else None
        return stored

    def append(self, request: Request, response: dict[str, Any]) -> None:
        sent_at = request.headers.get(SENT_AT_HEADER)
        received = time.time()
        stored = self._stored(request, response)
        if stored is None:
            return
        stored_request, stored_response = stored
        if sent_at is not None:
            with suppress(ValueError):
                latency_ms = (received - float(sent_at)) * 1000
                stored_response["headers"][LATENCY_HEADER] = [f"{latency_ms:.1f}"]
        self._record(stored_request, stored_response)

    def adopt(self, request: Request, response: dict[str, Any]) -> None:
        """Record an interaction another process recorded (a Spark task's shard), as if recorded here: through
        this cassette's redaction and filters, into its journal; its recorded latency is kept."""
        stored = self._stored(request, response)
        if stored is not None:
            self._record(*stored)

    def _stored(self, request: Request, response: dict[str, Any]) -> tuple[Request, dict[str, Any]] | None:
        stored_request = self._before_record_request(request)
        response = {**response, "headers": {k: list(v) for k, v in response["headers"].items()}}
        stored_response = self._before_record_response(response) if stored_request is not None else None
        if stored_request is None or stored_response is None:
            return None
        return stored_request, stored_response

    def _record(self, stored_request: Request, stored_response: dict[str, Any]) -> None:
        interaction = encode_interaction(stored_request, stored_response)
        with self._lock:
            self._add(stored_request, stored_response)
            self.n_recorded += 1
            self.dirty = True
            self._journal.append(interaction, self._journal_header)

    def _journal_header(self) -> dict[str, Any]:
        return {"mode": self.evalsuite_mode, "metadata": self._metadata_to_save()}

    def _metadata_to_save(self) -> dict[str, Any]:
        return {
            **self.recorded_metadata,
            **self.new_metadata,
            "evalsuite_version": evalsuite.__version__,
            "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    # saving -----------------------------------------------------------------------------------

    def _save(self, force: bool = False) -> None:
        if not (force or self.dirty):
            self._journal.close()
            return
        loaded = list(zip(self.data[: self._loaded_count], self.infos[: self._loaded_count]))
        recorded = list(zip(self.data[self._loaded_count :], self.infos[self._loaded_count :]))
        if self.record_mode == RecordMode.ALL:  # recordings replace old ones with the same key
            rerecorded = {info.key for _, info in recorded}
            if self.evalsuite_mode == "rewrite":
                kept = [p for p in self._previous if SampleKey.parse(p[1].tag).example_id in self.keep_examples]
            else:
                kept = [p for p in loaded if p[1].key not in rerecorded]
            interactions = [pair for pair, _ in kept + recorded]
        else:
            interactions = self.data
        self._metadata = self._metadata_to_save()
        cassette = {"requests": [r for r, _ in interactions], "responses": [r for _, r in interactions]}
        # the persister directly, not vcrpy 9's _persist (absent in 8.x, the newest vcrpy for Python 3.10)
        self._persister.save_cassette(self._path, {**cassette, "metadata": self._metadata}, serializer=self._serializer)
        self.saved_count = len(interactions)
        self.dirty = False
        self._journal.remove()

    def release(self) -> None:
        """Once the block has ended (saved if needed): keep the counts, drop the interactions and their index.

        vcrpy's patched transport classes and this cassette's bound-method hooks form reference cycles, so the
        object itself waits for a full garbage collection; what it holds (the whole recording: 180 MB for 25k
        interactions) is freed now, before the next item or the reports need the memory. What ``_load`` froze is
        handed back to the garbage collector."""
        if self.saved_count is None:
            self.saved_count = len(self.data)
        for held in (self.data, self.infos, self.play_counts, self._unplayed, self._unplayed_tagged, self._available,
                     self._by_key, self._by_tag, self._previous):
            held.clear()
        gc.unfreeze()

    def save_interrupted(self) -> None:
        """After an exception: merge what was journaled into the file, as a crash would on next load."""
        self._journal.close()
        if self.dirty:
            recover_journal(Path(self._path), self.keys)
            self.dirty = False

