"""The one list of record modes (pytest-recording's five), in a module light enough for the plugin to import
at start-up: the cassettes package that implements them pulls in vcrpy."""

MODES = ("none", "once", "new_episodes", "all", "rewrite")
