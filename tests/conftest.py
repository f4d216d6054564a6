"""Nested pytest runs (the plugin's end-to-end tests) get the same unused-plugin exclusions as pytest.ini."""

import os

os.environ["PYTEST_ADDOPTS"] = (os.environ.get("PYTEST_ADDOPTS", "") + " -p no:hypothesispytest -p no:benchmark").strip()


import pytest


def pytest_configure(config: pytest.Config) -> None:
    # The loader's tests use minimal case files (accuracy on raw answers); tests of the warning itself use
    # pytest.warns or a nested run, which see it whatever this filter says.
    config.addinivalue_line("filterwarnings", "ignore::evalsuite.errors.CaseFileWarning")


SPARK_TESTS = "tests/distributed/"  # their session-scoped SparkSession costs about 15 s and a JVM per worker


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``-n N``: xdist's load balancing, except that the tests under ``tests/distributed/`` form one unit of work,
    run by one worker, so the test session starts one SparkSession, not one per worker. (``xdist_group`` marks
    cannot do it: pytest 9.2 ignores the node ids xdist 3.8 rewrites for them.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SparkTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return SPARK_TESTS if nodeid.startswith(SPARK_TESTS) else nodeid

    return SparkTestsTogether(config, log)


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers():
    """The breakers are process-wide (one per endpoint, as in a user's session): no state carries across tests,
    whose servers may reuse a port another test found dead."""
    yield
    from evalsuite.model._breaker import reset_breakers

    reset_breakers()
