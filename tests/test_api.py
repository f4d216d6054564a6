"""The curated public API: every name resolves, and ``import evalsuite`` alone stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import evalsuite


def test_every_public_name_is_the_object_its_package_defines() -> None:
    from evalsuite import cases, errors, metrics, model, parsing, runner

    assert evalsuite.metric is metrics.metric and evalsuite.Metric is metrics.Metric
    assert evalsuite.MetricInfo is metrics.MetricInfo
    assert evalsuite.parser is parsing.parser and evalsuite.provider is model.provider
    assert evalsuite.load_suite is cases.load_suite
    assert evalsuite.run_item is runner.run_item and evalsuite.RunSettings is runner.RunSettings
    assert evalsuite.EvalsuiteError is errors.EvalsuiteError
    assert isinstance(evalsuite.__version__, str)
    assert set(evalsuite.__all__) <= set(dir(evalsuite))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'metrc'"):
        evalsuite.metrc  # noqa: B018


def test_import_evalsuite_loads_neither_the_sdk_nor_vcrpy() -> None:
    code = "import sys, evalsuite; print(sorted(m for m in ('openai', 'vcr', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_the_pytest_plugin_imports_none_of_the_pipeline() -> None:
    """The plugin loads in every pytest run of the environment: the SDK, vcrpy, numpy and datasets wait for a case."""
    heavy = ("openai", "vcr", "numpy", "datasets", "pydantic", "evalsuite.runner")
    code = f"import sys, evalsuite.plugin, evalsuite.fixtures; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

