"""``evalsuite view``: serve a report folder on 127.0.0.1 and print (or open) the URL of its report.html.

report.html works from disk too; a local server is for a machine whose browser cannot open the file directly
(a remote box through a forwarded port, a sandboxed browser). It serves the one folder, only on the loopback
interface, until interrupted.
"""

from __future__ import annotations

import functools
import sys
import threading
import webbrowser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PAGE = "report.html"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """One line per request would bury the URL; errors still reach stderr."""


def locate(path: Path) -> tuple[Path, str]:
    """(the folder to serve, the page in it) for a report folder or a report.html; raises FileNotFoundError."""
    if path.is_file():
        return path.resolve().parent, path.name
    if (path / PAGE).is_file():
        return path.resolve(), PAGE
    raise FileNotFoundError(f"{path / PAGE if path.is_dir() else path}: no such report. Fix: run the suite first "
                            "(`python -m pytest cases` writes reports/report.html), or name the folder that holds it")


def serve(path: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """A server (not yet serving) for ``path``'s report on 127.0.0.1:``port`` (0: any free port), and its URL."""
    folder, page = locate(path)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    return server, f"http://127.0.0.1:{server.server_address[1]}/{page}"


def main(path: Path, port: int = 0, *, open_browser: bool = False) -> int:
    try:
        server, url = serve(path, port)
    except FileNotFoundError as exc:
        print(f"evalsuite view: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evalsuite view: cannot listen on 127.0.0.1:{port}: {exc.strerror}. Fix: pick another --port, "
              "or 0 for any free one", file=sys.stderr)
        return 2
    print(f"serving {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
