"""Hugging Face ``evaluate`` modules as metrics, offline: module folders the tests write, and a Hub that
cannot be reached (closed port, silent endpoint, HF_EVALUATE_OFFLINE with an empty cache)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricError, MetricParamError
from evalsuite.metrics import get_metric
from tests._support.evaluate_modules import OVERLAP
from tests._support.scored import scored

ITEMS = [scored("the cat sat", "the cat sat"), scored("The dog", "the dog ran"), scored(None, "a b", parsed=False, text="?")]


def write_module(folder: Path, name: str = "overlap", script: str = OVERLAP) -> None:
    (folder / "metrics" / name).mkdir(parents=True)
    (folder / "metrics" / name / f"{name}.py").write_text(script)


def evaluate_spec(**evaluate: object) -> MetricSpec:
    return MetricSpec.model_validate({"evaluate": evaluate, "min": 0.1})


@pytest.fixture(autouse=True, scope="module")
def modules_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """evaluate copies every module it loads into its modules cache: keep that in a temporary folder, one per
    process (evaluate imports the cache as the package ``evaluate_modules`` once)."""
    import evaluate

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path_factory.mktemp("hf-modules"))
        yield


def test_a_per_example_list_is_a_per_example_metric(tmp_path: Path):
    write_module(tmp_path)
    metric = get_metric("words", evaluate_spec(path="./metrics/overlap", value="overlap"), base_dir=tmp_path)
    values = metric.score(ITEMS)
    assert values == pytest.approx([1.0, 1 / 3, 0.0]) and metric.kind == "mean"
    assert metric.aggregate(values) == pytest.approx(4 / 9)
    assert "evaluate module 'overlap' (path ./metrics/overlap): overlap, mean of the per-example values" in metric.definition
    assert "it returned overlap 0.4444, exact 0.3333" in metric.definition  # every value the module reports
    lowered = get_metric("words", evaluate_spec(path="metrics/overlap", value="overlap", args={"lowercase": True}),
                         base_dir=tmp_path)
    assert lowered.score(ITEMS)[1] == pytest.approx(2 / 3)


def test_a_single_number_is_a_corpus_metric_recomputed_on_subsets(tmp_path: Path):
    write_module(tmp_path)
    metric = get_metric("exact", evaluate_spec(path="metrics/overlap", value="exact"), base_dir=tmp_path)
    values = metric.score(ITEMS)
    assert metric.kind == "corpus" and values[2] == ["", "a b"]  # an unparsed answer is an empty prediction
    assert metric.aggregate(values) == pytest.approx(1 / 3) and metric.aggregate(values[:1]) == 1.0
    per_pair = get_metric("exact", evaluate_spec(path="metrics/overlap", value="exact", per_example=True), base_dir=tmp_path)
    assert per_pair.score(ITEMS) == [1.0, 0.0, 0.0] and per_pair.kind == "proportion"


def test_a_module_with_several_values_needs_a_key(tmp_path: Path):
    write_module(tmp_path)
    named_like_module = get_metric("words", evaluate_spec(path="metrics/overlap"), base_dir=tmp_path)
    assert named_like_module.score(ITEMS)[0] == 1.0  # without a value: the value named like the module
    write_module(tmp_path, "wordstats", OVERLAP.replace("class Overlap", "class Wordstats"))
    metric = get_metric("words", evaluate_spec(path="metrics/wordstats"), base_dir=tmp_path)
    with pytest.raises(MetricError, match="returns several values; set evaluate.value to the one to gate: overlap, exact"):
        metric.score(ITEMS)
    wrong = get_metric("words", evaluate_spec(path="metrics/overlap", value="f1"), base_dir=tmp_path)
    with pytest.raises(MetricError, match="returned no 'f1'; set evaluate.value to the one to gate: overlap, exact"):
        wrong.score(ITEMS)


@pytest.mark.parametrize(
    "evaluate,message",
    [
        ({"path": "metrics/nothing"}, r"words: evaluate.path: metrics/nothing \(a module folder or a .py file\) not found"),
        ({"path": "metrics/empty"}, r"words: evaluate.path: metrics/empty/empty.py not found"),
        ({}, "words: evaluate needs one of path .* or name"),
        ({"path": "metrics/overlap", "name": "exact_match"}, "words: evaluate needs one of path"),
        ({"pth": "metrics/overlap"}, r"words: unknown parameter 'pth'; did you mean 'path'\? valid: path, name, value, args, per_example"),
        ({"path": "metrics/overlap", "args": ["x"]}, "evaluate.args must be a mapping"),
    ],
)
def test_spec_errors_name_the_fix(tmp_path: Path, evaluate: dict[str, object], message: str):
    write_module(tmp_path)
    (tmp_path / "metrics" / "empty").mkdir()
    with pytest.raises(MetricParamError, match=message):
        get_metric("words", evaluate_spec(**evaluate), base_dir=tmp_path)
    with pytest.raises(MetricParamError, match="takes no parameters beside evaluate"):
        get_metric("words", MetricSpec.model_validate({"evaluate": {"path": "metrics/overlap"}, "lowercase": True}),
                   base_dir=tmp_path)


def load_by_name(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``{evaluate: {name: exact_match}}`` in a fresh process (evaluate reads its settings at import)."""
    script = ("from evalsuite.cases.schema import MetricSpec\nfrom evalsuite.metrics import get_metric\n"
              "get_metric('em', MetricSpec.model_validate({'evaluate': {'name': 'exact_match'}}))\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HTTP", "http"))}
    full = {**clean, "HF_HOME": str(tmp_path / "hf"), "HF_MODULES_CACHE": str(tmp_path / "hf-modules"), **env}
    return subprocess.run([sys.executable, "-c", script], env=full, capture_output=True, text=True, timeout=120)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_hub_names_hf_evaluate_offline_and_the_local_path(tmp_path: Path):
    done = load_by_name(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 1
    assert "MetricParamError: em: evaluate module 'exact_match' is loaded from the Hugging Face Hub, which is unreachable" in done.stderr
    assert "set HF_EVALUATE_OFFLINE=1 to use the cached copy" in done.stderr
    assert "evaluate: {path: ./metrics/exact_match}" in done.stderr


def test_a_silent_hub_fails_after_the_probe_instead_of_hanging(tmp_path: Path):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        done = load_by_name(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}")
    assert "which is unreachable" in done.stderr and "timed out" in done.stderr


def test_offline_with_an_empty_cache_says_so(tmp_path: Path):
    done = load_by_name(tmp_path, HF_EVALUATE_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert "em: evaluate module 'exact_match' is not in the cache and HF_EVALUATE_OFFLINE is set" in done.stderr
    assert "evaluate: {path: ./metrics/exact_match}" in done.stderr
