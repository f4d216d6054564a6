"""``python: "file.py:function"``: a one-off metric in a file beside the case, and every way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import MetricParamError
from evalsuite.metrics import get_metric
from tests._support.scored import scored

LOCAL_METRICS = '''
from evalsuite.metrics import Metric


def polite(answer, *, word="please"):
    """Share of answers containing the word."""
    return word in (answer.answer.text or "")


class Longest(Metric):
    kind = "corpus"

    def describe(self):
        return "longest answer, in characters"

    def score(self, scored):
        return [len(s.answer.text or "") for s in scored]

    def aggregate(self, values):
        return float(max(values))
'''


def spec(target: str, **extra: object) -> MetricSpec:
    return MetricSpec.model_validate({"python": target, **extra})


def test_a_function_and_a_class_from_a_file_beside_the_case(tmp_path: Path):
    (tmp_path / "local_metrics.py").write_text(LOCAL_METRICS)
    items = [scored("yes please", None), scored("no", None)]
    polite = get_metric("mine", spec("local_metrics.py:polite", min=0.5), base_dir=tmp_path)
    assert polite.name == "mine" and polite.score(items) == [1, 0] and polite.kind == "proportion"
    custom = get_metric("mine", spec("local_metrics.py:polite", word="no"), base_dir=tmp_path)
    assert custom.score(items) == [0, 1]
    longest = get_metric("longest", spec("local_metrics.py:Longest"), base_dir=tmp_path)
    assert longest.aggregate(longest.score(items)) == 10.0


def test_the_file_is_imported_once_per_path(tmp_path: Path):
    (tmp_path / "counted.py").write_text("import builtins\nbuiltins.evalsuite_imports = getattr(builtins, 'evalsuite_imports', 0) + 1\n"
                                         "def one(answer):\n    return 1.0\n")
    import builtins

    for _ in range(3):
        get_metric("one", spec("counted.py:one"), base_dir=tmp_path)
    assert builtins.evalsuite_imports == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "target,files,message",
    [
        ("local_metrics.py", {}, r"mine: python: 'local_metrics.py' must be '<file>.py:<function>'"),
        ("missing.py:score", {}, r"mine: python: .*missing.py does not exist \(the path is relative to the case file's folder\)"),
        ("local_metrics.py:polit", {"local_metrics.py": LOCAL_METRICS},
         r"mine: python: .*local_metrics.py has no function 'polit'; did you mean 'polite'\? functions defined there: "
         r"(polite, Longest|Longest, polite)"),
        ("broken.py:score", {"broken.py": "def score(answer)\n    return 1\n"},
         r"mine: python: .*broken.py:1: cannot import it: SyntaxError: expected ':'; fix the module"),
        ("failing.py:score", {"failing.py": "import not_a_module_anywhere\n"},
         r"mine: python: .*failing.py:1: cannot import it: ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ],
)
def test_errors_name_the_file_and_the_fix(tmp_path: Path, target: str, files: dict[str, str], message: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(MetricParamError, match=message):
        get_metric("mine", spec(target), base_dir=tmp_path)


def test_unknown_parameter_of_a_python_metric(tmp_path: Path):
    (tmp_path / "local_metrics.py").write_text(LOCAL_METRICS)
    with pytest.raises(MetricParamError, match=r"mine: unknown parameter 'wrd'; did you mean 'word'\? valid: word$"):
        get_metric("mine", spec("local_metrics.py:polite", wrd="x"), base_dir=tmp_path)
