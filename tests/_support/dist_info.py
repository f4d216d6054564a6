"""A fake installed package: a dist-info folder (METADATA + entry_points.txt) and its modules, found via PYTHONPATH."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def install_package(site: Path, name: str, entry_points: Mapping[str, Mapping[str, str]],
                    modules: Mapping[str, str]) -> dict[str, str]:
    """Write ``<site>/<name>-1.0.dist-info`` declaring ``entry_points`` ({group: {name: value}}) and ``modules``.

    Returns the environment that puts ``site`` first on PYTHONPATH, so a pytest subprocess sees the package
    through ``importlib.metadata`` as if it were pip-installed.
    """
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
        for group, points in entry_points.items()
    ))
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}
