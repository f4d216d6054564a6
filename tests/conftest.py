"""Nested pytest runs (the plugin's end-to-end tests) get the same unused-plugin exclusions as pytest.ini."""

import os

os.environ["PYTEST_ADDOPTS"] = (os.environ.get("PYTEST_ADDOPTS", "") + " -p no:hypothesispytest -p no:benchmark").strip()


import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The loader's tests use minimal case files (accuracy on raw answers); tests of the warning itself use
    # pytest.warns or a nested run, which see it whatever this filter says.
    config.addinivalue_line("filterwarnings", "ignore::evalsuite.errors.CaseFileWarning")
    # -n N keeps its load balancing and also honours xdist_group marks: the Spark tests share one worker, so the
    # test session starts one SparkSession (about 15 s and a JVM), not one per worker.
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "loadgroup"


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers():
    """The breakers are process-wide (one per endpoint, as in a user's session): no state carries across tests,
    whose servers may reuse a port another test found dead."""
    yield
    from evalsuite.model._breaker import reset_breakers

    reset_breakers()
