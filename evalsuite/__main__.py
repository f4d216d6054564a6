"""``python -m evalsuite``: the command line (see ``evalsuite.cli``)."""

from evalsuite.cli import main

raise SystemExit(main())
