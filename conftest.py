"""Project-level pytest configuration.

evalsuite itself is loaded through its ``pytest11`` entry point (``pip install -e .``); this file only
enables ``pytester`` for the project's own plugin tests (pytest allows ``pytest_plugins`` only here).
"""

pytest_plugins = ["pytester"]
