"""Metrics that call a model themselves (an LLM judge, an embeddings endpoint): where and how those calls go.

Why a context: the other metrics are functions of the answers, but a judge sends requests, which must be
recorded, replayed offline, redacted and retried like the item's own calls. The runner gives every
:class:`CallingMetric` of an item one :class:`MetricCalls` (``MetricCalls.for_item``), and each such metric
records into a cassette of its own beside the item's: ``cassettes/<suite>/<item id>@<metric>.json`` (``@``
cannot occur in an item id, so the name never collides with an item's cassette). Its requests are matched
like every call, on method, endpoint and body, so on the judge's model, prompt and parameters: changing the
judge misses only its recordings, never the item's.

Record mode: the run's ``--record-mode``; ``--eval-rejudge`` replays the item (nothing is sent to the model
under test) and re-records every metric call (``rewrite``), so a judge change is measured on the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.errors import MetricError, NotRecorded, display_path
from evalsuite.metrics._base import Metric
from evalsuite.records import Answer, Call, ItemResult

if TYPE_CHECKING:
    from evalsuite._util.secrets import Scrubber
    from evalsuite.cases import CaseRun
    from evalsuite.cases.schema import ModelSettings
    from evalsuite.cassettes import CassetteOptions
    from evalsuite.model import EngineSettings
    from evalsuite.runner import RunSettings

REJUDGE_MODE = "rewrite"  # what --eval-rejudge records metric calls with


class CallingMetric(Metric):
    """A metric whose scoring sends model calls through :attr:`calls` (given by the runner before scoring)."""

    calls: MetricCalls | None = None

    def context(self) -> MetricCalls:
        if self.calls is None:
            raise MetricError(f"{self.name} calls a model, so it runs in a case file's items (pytest cases, or "
                              "evalsuite.run_item), which record its calls beside the item's cassette")
        return self.calls


@dataclass
class MetricCalls:
    """One item's metric calls: its cassette folder, the record mode of metric calls, the engine, the notes
    each metric leaves for report.json (``meta["model_calls"][<metric>]``)."""

    rootdir: Path
    folder: Path  # cassettes/<suite>
    item_id: str
    record_mode: str
    engine: EngineSettings
    options: CassetteOptions
    nodeid: str
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _scrubber: Scrubber | None = field(default=None, repr=False)

    @classmethod
    def for_item(cls, run: CaseRun, settings: RunSettings, options: CassetteOptions,
                 metrics: Mapping[str, Metric]) -> MetricCalls:
        """The context of ``run``'s metric calls, given to each of its calling metrics."""
        calls = cls(settings.rootdir, settings.rootdir / settings.cassette_dir / run.suite, run.item_id,
                    settings.metric_record_mode or settings.record_mode, settings.engine, options,
                    settings.nodeid or run.source)
        for metric in metrics.values():
            if isinstance(metric, CallingMetric):
                metric.calls = calls
        return calls

    def sendable(self, answer: str) -> str:
        """An answer as a metric may send it on: scrubbed of the secrets its cassette redacts. Replay then builds
        the same request from the stored (redacted) answer as the live run did, and a judge never receives a key
        the model under test leaked."""
        if self._scrubber is None:
            from evalsuite._util.secrets import Scrubber

            self._scrubber = Scrubber(redact=self.options.redact)
        return self._scrubber.text(answer)

    def cassette(self, metric: str) -> Path:
        return self.folder / f"{self.item_id}@{metric}.json"

    def answer(self, metric: str, calls: Sequence[Call], model: ModelSettings, what: str) -> list[Answer]:
        """One Answer per call, recorded in (or replayed from) ``metric``'s cassette; ``NotRecorded`` naming the
        cassette and the command that records them when replay misses any. ``what``: "judge", "embeddings"."""
        from evalsuite.cassettes import open_cassette  # the recording stack, only once a metric calls
        from evalsuite.model import answer_calls, finish_cassette, get_provider
        from evalsuite.model._embeddings import EMBEDDINGS, embeddings_endpoint

        path = self.cassette(metric)
        metadata = {"item_id": self.item_id, "metric": metric}
        endpoint = (embeddings_endpoint(model) if calls and calls[0].api == EMBEDDINGS
                    else get_provider(model.provider).endpoint(model))
        cassette = open_cassette(path, self.record_mode, metadata=metadata, options=self.options)
        answers = answer_calls(calls, model, cassette, endpoint, settings=self.engine, label=f"{self.item_id} {metric}")
        misses = finish_cassette(cassette, calls, answers, provider=model.provider, endpoint=endpoint)
        if misses is not None:
            missing = [call for call, a in zip(calls, answers) if a.error_kind == "not_recorded"]
            hint = get_provider(model.provider).record_hint(model)
            raise NotRecorded("\n".join([
                f"{self.item_id}: {metric}: {len(missing)} {what} call(s) not recorded in "
                f"{display_path(path, self.rootdir)} (record mode '{self.record_mode}'; no request was sent)",
                *(f"  {line}" for line in misses.lines[:10]),
                f"To re-run {metric} on the recorded answers (nothing is sent to the model under test), {hint} "
                f"for {model.name} and run:",
                f"  pytest '{self.nodeid}' --eval-rejudge",
                "or record only the missing calls: --record-mode=new_episodes",
            ]))
        return answers

    def note(self, metric: str, **values: Any) -> None:
        """What report.json says about ``metric``'s calls (model, prompt hash, cassette, counts)."""
        self.notes.setdefault(metric, {}).update(values)

    def finish(self, result: ItemResult) -> ItemResult:
        """``result`` with the notes in ``meta["model_calls"]``, each metric's ``remark`` ending its reason (and the
        failure message, for a failed metric)."""
        if self.notes:
            result.meta["model_calls"] = {name: {k: v for k, v in note.items() if k != "remark"}
                                          for name, note in self.notes.items()}
        for metric in result.metrics:
            remark = self.notes.get(metric.name, {}).get("remark")
            if remark:
                metric.reason = f"{metric.reason}; {remark}" if metric.reason else remark
                if metric.failed and result.message:
                    result.message += f"\n  {metric.name}: {remark}"
        return result
