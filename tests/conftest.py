"""Nested pytest runs (the plugin's end-to-end tests) get the same unused-plugin exclusions as pytest.ini."""

import os

os.environ["PYTEST_ADDOPTS"] = (os.environ.get("PYTEST_ADDOPTS", "") + " -p no:hypothesispytest -p no:benchmark").strip()
