"""The hooks evalsuite calls, so a ``conftest.py`` or a plugin can act on a run without changing the core.

Registered by ``evalsuite.plugin.pytest_addhooks``. The configure, cassette and item-result hooks get
the live object (the settings, the cassette options, the ``ItemResult``), so an implementation may
change what it is given; the session hook gets copies (see its docstring).
MLflow logging or a results database are ``pytest_evalsuite_item_result`` / ``pytest_evalsuite_session_result``
implementations, kept out of the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from evalsuite.cassettes import CassetteOptions
    from evalsuite.records import ItemResult
    from evalsuite.runner import RunSettings


def pytest_evalsuite_configure(config: pytest.Config, settings: RunSettings) -> None:
    """Once per process that runs or reports evalsuite items (the controller and each xdist worker).

    Called when the options are first needed: after collection, before the first item runs (and on an
    xdist controller, before the reports are written), so a run without evalsuite items never calls it.

    Change ``settings`` in place (e.g. ``settings.alpha = 0.01``, a different ``cassette_dir``,
    ``report_dir`` or ``baseline_path``, relative to ``rootdir``) to change the whole run. The baseline
    is already loaded into ``settings.baseline``: a new ``baseline_path`` changes where
    ``--eval-update-baseline`` writes and what report.json names.
    """


def pytest_evalsuite_cassette(config: pytest.Config, item: pytest.Item, cassette: CassetteOptions) -> None:
    """Before an item's model calls, with that item's fresh cassette options.

    Append to ``cassette.before_record_request`` / ``cassette.before_record_response`` (extra
    redaction, or return None to drop an interaction) or to ``cassette.match_body`` (normalise a
    request body before it is matched). ``item`` is a case item, or a hand-written test using the
    ``evalsuite_client`` fixtures.
    """


def pytest_evalsuite_item_result(config: pytest.Config, item: pytest.Item, result: ItemResult) -> None:
    """After each scored item (case item or ``evalsuite_score`` call), in the process that ran it.

    Called before the item passes or fails, so a failing item's result is seen too.
    """


def pytest_evalsuite_session_result(config: pytest.Config, items: list[ItemResult]) -> None:
    """Once per session, on the controller, with every item's result (from every xdist worker), sorted by node id.

    Every selected item is there, run or not: an item that was not recorded, errored, or was skipped (by a
    marker or because it cannot run here) has ``outcome`` set ("not_recorded", "error", "skipped"), ``message``
    saying why, and no records or metrics; a quarantined item's ``outcome`` is "xfailed" or "xpassed".
    Deselected items (``-k``, ``-m``, ``--lf``) are not.

    ``items`` are copies, not the objects the item-result hook saw: each result travels inside its test
    report as ``ItemResult.to_dict()`` and is rebuilt with ``ItemResult.from_dict`` (with or without
    xdist), so what survives is exactly what ``to_dict`` carries; attributes set on a result object
    elsewhere are gone. The reports (and the baseline) are written from these same copies afterwards,
    so changes made here, such as additions to ``result.meta``, do reach report.json.
    """
