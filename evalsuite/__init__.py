"""evalsuite: YAML case files become recorded, statistically gated pytest regression tests for LLMs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evalsuite")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
