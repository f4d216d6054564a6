"""Fixtures that give a hand-written pytest test the suite's recording, metrics and gates.

- ``evalsuite_model``: the test's ``ModelSettings``, from ``@pytest.mark.evalsuite_model(name=..., provider=...)``
  (any case-file ``model:`` key), with ``--eval-model`` / ``--eval-api`` applied; override the fixture in a
  ``conftest.py`` to set one model for a folder.
- ``evalsuite_cassette``: the test's cassette, ``<eval_cassette_dir>/<module stem>/<test name>.json``, in the
  session's record mode, with the built-in matching and redaction and the ``pytest_evalsuite_cassette`` hook
  applied. Every httpx call the test makes goes through it.
- ``evalsuite_client`` / ``evalsuite_async_client``: an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` for that
  model, inside that cassette. Credentials come from the environment; replay needs none.
- ``evalsuite_score``: scores answers with the registered parsers and metrics and the same verdict
  (thresholds, baseline gate) as a case item; the result is in the session report like a case item's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from evalsuite.plugin import run_settings

if TYPE_CHECKING:  # the pipeline is imported inside the fixtures: this module loads with the plugin, in every run
    import openai

    from evalsuite.cases.schema import ModelSettings
    from evalsuite.cassettes import CassetteHandle
    from evalsuite.records import ItemResult
    from evalsuite.runner import RunSettings

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")  # kept out of cassette file names
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.\-]+")  # what a case id may not hold
_cassette_key = pytest.StashKey["CassetteHandle"]()
_score_names_key = pytest.StashKey[set[str]]()
_model_key = pytest.StashKey["ModelSettings"]()  # the model a client fixture was built for: whose record hint to show


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "evalsuite_model(**settings): the model of the evalsuite_client fixtures (case-file model: keys)"
    )


@pytest.fixture
def evalsuite_model(request: pytest.FixtureRequest) -> ModelSettings:
    """The test's model: the ``evalsuite_model`` marker's keys, then the session's ``--eval-model`` override."""
    from evalsuite.cases.schema import ModelSettings

    marker = request.node.get_closest_marker("evalsuite_model")
    try:
        model = ModelSettings(**(marker.kwargs if marker else {}))
    except ValueError as exc:  # pydantic's ValidationError: name the marker, not a traceback
        pytest.fail(f"{request.node.nodeid}: @pytest.mark.evalsuite_model: {exc}", pytrace=False)
    override = _settings(request).model_override
    return model.model_copy(update=override) if override else model


@pytest.fixture
def evalsuite_cassette(request: pytest.FixtureRequest) -> Iterator[CassetteHandle]:
    """The test's own cassette around the whole test (session record mode, hook-given options applied)."""
    from evalsuite.cassettes import CassetteOptions, use_cassette
    from evalsuite.errors import EvalsuiteError

    settings = _settings(request)
    options = CassetteOptions()
    request.config.hook.pytest_evalsuite_cassette(config=request.config, item=request.node, cassette=options)
    path = cassette_path(request.node, settings.rootdir / settings.cassette_dir)
    try:
        with use_cassette(path, settings.record_mode, metadata={"item_id": request.node.nodeid},
                          options=options) as cassette:
            request.node.stash[_cassette_key] = cassette
            yield cassette
    except EvalsuiteError as exc:  # a corrupt cassette: the message names the file and the fix
        pytest.fail(str(exc), pytrace=False)


def cassette_path(item: pytest.Item, cassette_dir: Path) -> Path:
    """``<cassette_dir>/<module stem>/<Class.test_name[params]>.json``: one file per test, so xdist workers never share one."""
    name = ".".join(item.nodeid.split("::")[1:]) or item.name
    return cassette_dir / item.path.stem / f"{_UNSAFE.sub('_', name)}.json"


@pytest.fixture
def evalsuite_client(
    request: pytest.FixtureRequest, evalsuite_model: ModelSettings, evalsuite_cassette: CassetteHandle
) -> Iterator[openai.OpenAI]:
    """An ``openai.OpenAI`` for ``evalsuite_model`` whose calls are recorded in / replayed from the test's cassette."""
    from evalsuite.model import make_sync_client

    client = _client(make_sync_client, request, evalsuite_model)
    yield client
    client.close()


@pytest.fixture
def evalsuite_async_client(
    request: pytest.FixtureRequest, evalsuite_model: ModelSettings, evalsuite_cassette: CassetteHandle
) -> Iterator[openai.AsyncOpenAI]:
    """The ``openai.AsyncOpenAI`` counterpart; use it in the test's event loop. Closed after the test."""
    from evalsuite.model import make_client

    client: openai.AsyncOpenAI = _client(make_client, request, evalsuite_model)
    yield client
    _close_async(client, request.node)


def _close_async(client: openai.AsyncOpenAI, item: pytest.Item) -> None:
    """Close the client in a fresh event loop (httpx closes only inside one), or say why it cannot be.

    Connections kept alive from a loop that has since closed (``asyncio.run`` in the test, no
    ``async with``) can only be closed by that loop: the test must close the client there.
    """
    import asyncio  # 15 ms (ssl, the event loop): only for the async client

    try:
        asyncio.run(client.close())
    except RuntimeError:  # "Event loop is closed": the connections belong to the test's finished loop
        item.warn(pytest.PytestWarning(
            f"{item.nodeid}: evalsuite_async_client outlived the event loop that used it and cannot be closed; "
            "use it as `async with evalsuite_async_client as client:` inside that loop"
        ))


def _client(make: Callable[..., Any], request: pytest.FixtureRequest, model: ModelSettings) -> Any:
    from evalsuite.errors import EvalsuiteError

    settings = _settings(request)
    path = request.node.stash[_cassette_key].path
    # Replay needs no key: mode none, or once over a cassette that exists (nothing will be sent).
    replay = settings.record_mode == "none" or (settings.record_mode == "once" and path.exists())
    request.node.stash[_model_key] = model
    try:
        return make(model, replay=replay)
    except EvalsuiteError as exc:  # missing credentials: the message names the variable to set
        pytest.fail(f"{request.node.nodeid}: {exc}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A call with no recording fails the test with the command that records it, not vcrpy's traceback."""
    try:
        return (yield)
    except Exception as exc:
        cassette = item.stash.get(_cassette_key, None)
        if cassette is None:
            raise
        from evalsuite import runner
        from evalsuite.cases.schema import ModelSettings
        from evalsuite.cassettes import is_not_recorded, not_recorded_reason

        if not is_not_recorded(exc):
            raise
        settings = run_settings(item.config)
        model = item.stash.get(_model_key, None) or ModelSettings()
        message = runner.not_recorded_message(f"{item.nodeid}: a call", cassette.path, model, settings, item.nodeid,
                                              details=[not_recorded_reason(exc)])
        pytest.fail(message, pytrace=False)


Score = Callable[..., "ItemResult"]


@pytest.fixture
def evalsuite_score(request: pytest.FixtureRequest, evalsuite_model: ModelSettings) -> Score:
    """``evalsuite_score(answers, expected, *, metrics, parse=None, name=None, ids=None, inputs=None) -> ItemResult``.

    ``answers`` are model outputs (str), ``expected`` the references, one per example; ``metrics`` and
    ``parse`` are what a case file's ``metrics:`` and ``parse:`` hold. ``name`` (default: the test's
    name) is the item id in the report and the baseline; give each call in one test its own.
    Assert on ``result.passed`` and show ``result.message``.
    """
    from evalsuite import parsing, runner
    from evalsuite._pytest_items import add_result
    from evalsuite.cases import CaseRun
    from evalsuite.cases.schema import Case, DatasetSpec, MetricSpec, ParseSpec, PromptSpec
    from evalsuite.errors import EvalsuiteError, display_path
    from evalsuite.cassettes import CassetteOptions
    from evalsuite.metrics import get_metric
    from evalsuite.metrics._calls import MetricCalls
    from evalsuite.records import Answer, Example

    item = request.node

    def score(
        answers: Sequence[str | None],
        expected: Sequence[Any],
        *,
        metrics: Mapping[str, Mapping[str, Any]],
        parse: Mapping[str, Any] | None = None,
        name: str | None = None,
        ids: Sequence[str] | None = None,
        inputs: Sequence[str] | None = None,
    ) -> ItemResult:
        item_id = name or item.name
        if item_id in item.stash.setdefault(_score_names_key, set()):
            raise EvalsuiteError(f"{item.nodeid}: evalsuite_score called twice with the name {item_id!r}; pass name=")
        item.stash[_score_names_key].add(item_id)
        ids = [str(i) for i in (ids if ids is not None else range(len(answers)))]
        if not len(answers) == len(expected) == len(ids) == len(inputs if inputs is not None else ids):
            raise EvalsuiteError(f"{item.nodeid}: evalsuite_score needs one answer, expected (and id, input) per example")
        rows = [Example(id=i, fields={"input": inputs[n]} if inputs is not None else {}, expected=e)
                for n, (i, e) in enumerate(zip(ids, expected))]
        settings = _settings(request)
        try:  # the checks a case file gets at load time, with a python: path relative to the test file
            case = Case(id=_NOT_IN_ID.sub("_", item_id), model=evalsuite_model,
                        dataset=DatasetSpec(examples=[]), prompt=PromptSpec(),
                        parse=parsing.check(ParseSpec(**(parse or {})), base_dir=item.path.parent, rootdir=settings.rootdir),
                        metrics={metric: MetricSpec(**spec) for metric, spec in metrics.items()})
            built = {metric: get_metric(metric, spec, base_dir=item.path.parent) for metric, spec in case.metrics.items()}
        except ValueError as exc:  # pydantic's ValidationError, UnknownName, ParseSpecError, MetricParamError
            raise EvalsuiteError(f"{item.nodeid}: evalsuite_score: {exc}") from None
        _, line, _ = item.reportinfo()
        run = CaseRun(suite=item.path.stem, case=case, variant="", item_id=item_id,
                      source=f"{display_path(item.path, settings.rootdir)}:{(line or 0) + 1}", base_dir=item.path.parent)
        cassette = item.stash.get(_cassette_key, None)
        settings = replace(settings, nodeid=item.nodeid)
        # a judge or embeddings metric records beside the test's cassette: <module stem>/<name>@<metric>.json
        metric_calls = MetricCalls.for_item(run, settings, CassetteOptions(redact=list(settings.redact)), built)
        result = metric_calls.finish(runner.score(
            run, rows, [Answer(example_id=row.id, sample=0, text=text) for row, text in zip(rows, answers)], built,
            settings, cassette_file=cassette.path if cassette else None,
            cassette_interactions=cassette.n_interactions if cassette else 0,
        ))
        add_result(item, result)
        return result

    return score


def _settings(request: pytest.FixtureRequest) -> RunSettings:
    return run_settings(request.config)
