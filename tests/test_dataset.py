"""Dataset rows -> Examples: every source through `datasets`, column mapping, labels, deterministic sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest

from evalsuite.cases.schema import DatasetSpec
from evalsuite import dataset
from evalsuite.dataset import DatasetError, fingerprint, load_examples, preview
from evalsuite.records import Example

# ../shared/data beside the repository (from a worktree one level deeper, the same folder higher up)
IMDB = next((folder / "shared" / "data" / "imdb-test.jsonl" for folder in Path(__file__).resolve().parents[2:]
             if (folder / "shared" / "data" / "imdb-test.jsonl").exists()),
            Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb-test.jsonl")

ROWS = [  # invented reviews: label 1 = positive
    {"rid": "a1", "review": "Loved every minute", "label": 1},
    {"rid": "a2", "review": "Dull and slow", "label": 0},
    {"rid": "a3", "review": "A small gem", "label": 1},
    {"rid": "a4", "review": "I walked out", "label": 0},
    {"rid": "a5", "review": "Funny and warm", "label": 1},
    {"rid": "a6", "review": "Plot holes everywhere", "label": 1},
]


def spec(**kwargs) -> DatasetSpec:
    return DatasetSpec.model_validate(kwargs)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_inline_examples_use_the_row_index_as_id(tmp_path: Path) -> None:
    rows = load_examples(spec(examples=[{"q": "2+2", "expected": "4"}, {"q": "3+3", "expected": "6"}]), tmp_path)
    assert rows == [Example("0", {"q": "2+2"}, "4"), Example("1", {"q": "3+3"}, "6")]


def test_jsonl_with_id_column_mapping_and_label_names(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "reviews.jsonl", ROWS)
    rows = load_examples(spec(path="reviews.jsonl", id="rid", expected="label", columns={"text": "review"},
                              label_names=["negative", "positive"]), tmp_path)
    assert [r.id for r in rows] == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert rows[1].expected == "negative" and rows[0].expected == "positive"
    assert rows[0].fields["text"] == "Loved every minute" == rows[0].fields["review"]
    assert "label" not in rows[0].fields


def test_json_array_file(tmp_path: Path) -> None:
    (tmp_path / "qa.json").write_text(json.dumps([{"question": "Capital of Peru?", "answer": "Lima"},
                                                  {"question": "Capital of Chad?", "answer": "N'Djamena"}]))
    rows = load_examples(spec(path="qa.json", expected="answer"), tmp_path)
    assert [(r.fields["question"], r.expected) for r in rows] == [("Capital of Peru?", "Lima"), ("Capital of Chad?", "N'Djamena")]


def test_csv_cells_stay_strings(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("code,answer,note,label\n007,NA,,1\n042,None,n/a,0\n")
    rows = load_examples(spec(path="codes.csv", expected="label", label_names={0: "no", 1: "yes"}), tmp_path)
    assert rows[0].fields == {"code": "007", "answer": "NA", "note": ""}
    assert rows[1].fields == {"code": "042", "answer": "None", "note": "n/a"}
    assert [r.expected for r in rows] == ["yes", "no"]  # "1" from the CSV matches the YAML key 1


def test_parquet_file(tmp_path: Path) -> None:
    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "reviews.parquet"))
    rows = load_examples(spec(path="reviews.parquet", expected="label", id="rid"), tmp_path)
    assert [(r.id, r.expected) for r in rows][:2] == [("a1", 1), ("a2", 0)]


def make_hub_repo(root: Path) -> Path:
    """A dataset repository laid out as on the Hub: data/<split>-*.parquet, with a ClassLabel column."""
    repo = root / "hub" / "reviews"
    (repo / "data").mkdir(parents=True)
    features = datasets.Features({"rid": datasets.Value("string"), "review": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    datasets.Dataset.from_list(ROWS[:4], features=features).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(ROWS[4:], features=features).to_parquet(str(repo / "data" / "test-00000-of-00001.parquet"))
    return repo


def test_hf_source_with_a_local_repository_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    make_hub_repo(tmp_path)
    rows = load_examples(spec(hf="hub/reviews", split="test", id="rid", expected="label"), tmp_path)
    assert [(r.id, r.expected) for r in rows] == [("a5", "pos"), ("a6", "pos")]  # ClassLabel names used
    train = load_examples(spec(hf="hub/reviews", split="train", expected="label", label_names=["bad", "good"]), tmp_path)
    assert [r.expected for r in train] == ["good", "bad", "good", "bad"]


def test_unavailable_hub_dataset_raises_dataset_unavailable_quickly(tmp_path: Path) -> None:
    """Offline and not cached: a clear reason, no long retries (run in a fresh process so the env applies)."""
    make_hub_repo(tmp_path)
    script = (
        "from pathlib import Path\n"
        "from evalsuite.cases.schema import DatasetSpec\n"
        "from evalsuite.dataset import load_examples, DatasetUnavailable\n"
        "for hf, split in (('evalsuite-tests/no-such-dataset', 'test'), ('hub/reviews', 'validation')):\n"
        "    try:\n"
        "        load_examples(DatasetSpec(hf=hf, split=split, expected=None), Path('.'))\n"
        "    except DatasetUnavailable as exc:\n"
        "        print('UNAVAILABLE', exc, flush=True)\n"
        # What is tested is the error: the child leaves without interpreter teardown, where pyarrow's thread pool
        # once aborted it ("terminate called without an active exception", exit -6) after both lines were printed.
        "import os; os._exit(0)\n"
    )
    repo_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home"),
           "PYTHONPATH": os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)  # offline must fail fast, not wait on retries: a hang fails here
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    assert lines[0].startswith("UNAVAILABLE dataset.hf 'evalsuite-tests/no-such-dataset' (split='test') is not available here: ")
    assert lines[1].startswith("UNAVAILABLE dataset.hf 'hub/reviews' (split='validation') is not available here: ")
    assert "validation" in lines[1].split("here: ")[1]


def test_limit_is_the_smaller_of_spec_and_argument(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", ROWS)
    assert len(load_examples(spec(path="r.jsonl", expected="label", limit=4), tmp_path)) == 4
    assert len(load_examples(spec(path="r.jsonl", expected="label", limit=4), tmp_path, limit=2)) == 2
    assert len(load_examples(spec(path="r.jsonl", expected="label"), tmp_path, limit=3)) == 3
    assert len(load_examples(spec(path="r.jsonl", expected="label", limit=50), tmp_path)) == 6


def test_shuffle_is_a_seeded_permutation(tmp_path: Path) -> None:
    rows = [{"n": i, "expected": i % 3} for i in range(40)]
    first = [r.id for r in load_examples(spec(examples=rows, shuffle=True, seed=7), tmp_path)]
    again = [r.id for r in load_examples(spec(examples=rows, shuffle=True, seed=7), tmp_path)]
    other = [r.id for r in load_examples(spec(examples=rows, shuffle=True, seed=8), tmp_path)]
    assert first == again and first != other
    assert sorted(first, key=int) == [str(i) for i in range(40)] and first != sorted(first, key=int)
    assert first[:5] == [r.id for r in load_examples(spec(examples=rows, shuffle=True, seed=7, limit=5), tmp_path)]


def test_stratify_takes_an_equal_share_per_value_in_dataset_order(tmp_path: Path) -> None:
    rows = [{"n": i, "expected": "pos" if i < 30 else ("neg" if i < 55 else "mixed")} for i in range(60)]
    picked = load_examples(spec(examples=rows, stratify="expected", limit=12, seed=3), tmp_path)
    assert Counter(r.expected for r in picked) == {"pos": 4, "neg": 4, "mixed": 4}
    assert [int(r.id) for r in picked] == sorted(int(r.id) for r in picked)  # dataset order kept
    assert picked == load_examples(spec(examples=rows, stratify="expected", limit=12, seed=3), tmp_path)
    assert picked != load_examples(spec(examples=rows, stratify="expected", limit=12, seed=4), tmp_path)
    # A group smaller than its share is taken whole; the others fill the limit.
    uneven = load_examples(spec(examples=rows, stratify="expected", limit=20, seed=3), tmp_path)
    assert Counter(r.expected for r in uneven) == {"mixed": 5, "neg": 7, "pos": 8}


def test_stratify_on_a_file_column_after_mapping(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", ROWS)
    picked = load_examples(spec(path="r.jsonl", columns={"y": "label"}, expected="y", stratify="y", limit=4), tmp_path)
    assert Counter(r.expected for r in picked) == {0: 2, 1: 2}


def test_missing_columns_name_the_available_ones(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", ROWS)
    with pytest.raises(DatasetError) as info:
        load_examples(spec(path="r.jsonl"), tmp_path)
    assert str(info.value) == ("dataset.expected: no column 'expected'; available: rid, review, label; set "
                               "dataset.expected to the reference column, or to null for a reference-free case")
    with pytest.raises(DatasetError, match=r"dataset.columns.text: no column 'body'; available: rid, review, label"):
        load_examples(spec(path="r.jsonl", expected="label", columns={"text": "body"}), tmp_path)


def test_bad_files_ids_and_labels(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file .*nope.jsonl \(paths are relative to the case file"):
        load_examples(spec(path="nope.jsonl"), tmp_path)
    (tmp_path / "r.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"unsupported file type '.txt'; use one of .jsonl, .json, .csv, .parquet"):
        load_examples(spec(path="r.txt"), tmp_path)
    rows = [{"k": "same", "expected": 1}, {"k": "same", "expected": 0}]
    with pytest.raises(DatasetError, match="the id 'same' occurs twice in column 'k'"):
        load_examples(spec(examples=rows, id="k"), tmp_path)
    with pytest.raises(DatasetError, match=r"dataset.id: row 1 has no value in column 'k'; give every row an id"):
        load_examples(spec(examples=[{"k": "a", "expected": 1}, {"expected": 0}], id="k"), tmp_path)
    with pytest.raises(DatasetError, match=r"example '0' has label 7, which label_names does not map \(known: 0..1\)"):
        load_examples(spec(examples=[{"expected": 7}], label_names=["no", "yes"]), tmp_path)


def test_reference_free_cases_have_no_expected(tmp_path: Path) -> None:
    rows = load_examples(spec(examples=[{"topic": "tea"}], expected=None), tmp_path)
    assert rows == [Example("0", {"topic": "tea"}, None)]


def test_fingerprint_tracks_ids_fields_expected_and_order(tmp_path: Path) -> None:
    base = [Example("1", {"t": "a"}, "x"), Example("2", {"t": "b"}, "y")]
    fp = fingerprint(base)
    assert len(fp) == 16 and fp == fingerprint([Example("1", {"t": "a"}, "x"), Example("2", {"t": "b"}, "y")])
    assert fp != fingerprint(base[::-1])
    assert fp != fingerprint([base[0], Example("2", {"t": "b"}, "z")])
    assert fp != fingerprint([base[0], Example("2", {"t": "c"}, "y")])
    assert fp != fingerprint([base[0], Example("3", {"t": "b"}, "y")])


@pytest.mark.skipif(not IMDB.exists(), reason="the shared 25k-row IMDB file is not on this machine")
def test_25k_row_jsonl_stratified_sample(tmp_path: Path) -> None:
    rows = load_examples(spec(path=str(IMDB), id="id", expected="label", stratify="label", limit=200, seed=1),
                         tmp_path)
    assert Counter(r.expected for r in rows) == {0: 100, 1: 100}
    assert len({r.id for r in rows}) == 200


# -------------------------------------------------------------------------------- preview (collection)


@pytest.fixture
def no_full_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A preview that reached for ``datasets`` (a full read of the file) fails the test."""
    def full_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("preview loaded the whole dataset")
    monkeypatch.setattr(dataset, "_load_table", full_load)


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
def test_preview_gives_the_first_rows_as_the_run_maps_them(tmp_path: Path, kind: str) -> None:
    rows = [{**row, "label": str(row["label"])} if kind == "csv" else row for row in ROWS]
    path = tmp_path / f"reviews.{kind}"
    if kind == "jsonl":
        write_jsonl(path, rows)
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        path.write_text("rid,review,label\n" + "".join(f"{r['rid']},{r['review']},{r['label']}\n" for r in rows))
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    case_spec = spec(path=path.name, id="rid", expected="label", columns={"text": "review"},
                     label_names=["negative", "positive"], shuffle=True, limit=4)
    expected = [Example(r["rid"], {"rid": r["rid"], "review": r["review"], "text": r["review"]},
                        "positive" if int(r["label"]) else "negative") for r in ROWS[:3]]
    assert preview(case_spec, tmp_path) == expected  # the file's first rows: shape, not sampling


def test_preview_reads_only_the_head_of_a_large_file(tmp_path: Path, no_full_load: None) -> None:
    write_jsonl(tmp_path / "big.jsonl", [{"t": f"row {i}", "expected": "x"} for i in range(5000)])
    (tmp_path / "big.jsonl").open("a").write("not json\n")  # never read: the preview stops at row 3
    assert [e.fields["t"] for e in preview(spec(path="big.jsonl"), tmp_path) or []] == ["row 0", "row 1", "row 2"]


def test_preview_raises_what_the_run_raises_with_the_key_to_point_at(tmp_path: Path, no_full_load: None) -> None:
    write_jsonl(tmp_path / "r.jsonl", ROWS)
    cases = [
        (spec(path="nope.jsonl"), ("dataset", "path"), "dataset.path 'nope.jsonl': no such file"),
        (spec(path="r.jsonl", expected="label", columns={"text": "body"}), ("dataset", "columns", "text"),
         "dataset.columns.text: no column 'body'; available: rid, review, label"),
        (spec(path="r.jsonl"), ("dataset", "expected"), "dataset.expected: no column 'expected'"),
        (spec(path="r.jsonl", expected="label", id="key"), ("dataset", "id"), "dataset.id: no column 'key'"),
        (spec(path="r.jsonl", expected="label", label_names={0: "neg"}), ("dataset", "label_names"),
         "dataset.label_names: example '0' has label 1, which label_names does not map"),
    ]
    for case_spec, key, message in cases:
        with pytest.raises(DatasetError) as info:
            preview(case_spec, tmp_path)
        assert (info.value.key, str(info.value)[:len(message)]) == (key, message)


def test_preview_finds_a_column_that_first_appears_below_the_head(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", [{"t": "a", "expected": "x"}] * 3 + [{"t": "b", "expected": "y", "hint": "h"}])
    assert [e.fields for e in preview(spec(path="r.jsonl", columns={"clue": "hint"}), tmp_path) or []] == [
        {"t": "a", "hint": None, "clue": None}] * 3  # as the run's table has it: the column, empty in these rows


def test_preview_uses_the_class_label_names_a_parquet_file_stores(tmp_path: Path, no_full_load: None) -> None:
    repo = make_hub_repo(tmp_path)
    head = preview(spec(path=str(repo / "data" / "train-00000-of-00001.parquet"), expected="label"), tmp_path)
    assert [e.expected for e in head or []] == ["pos", "neg", "pos"]


def test_preview_of_a_hub_dataset_is_none_and_of_inline_rows_is_the_run_s(tmp_path: Path, no_full_load: None) -> None:
    assert preview(spec(hf="imdb"), tmp_path) is None
    rows = [{"q": str(i), "expected": i} for i in range(5)]
    assert preview(spec(examples=rows), tmp_path) == load_examples(spec(examples=rows), tmp_path)[:3]
    with pytest.raises(DatasetError, match="the id 'same' occurs twice"):
        preview(spec(examples=[{"k": "same", "expected": 1}] * 2, id="k"), tmp_path)


def test_preview_leaves_json_shapes_only_datasets_reads_to_the_run(tmp_path: Path) -> None:
    (tmp_path / "columns.json").write_text(json.dumps({"question": ["a", "b"], "expected": ["x", "y"]}, indent=2))
    (tmp_path / "texts.json").write_text(json.dumps(["a", "b"]))
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps({"q": "a", "expected": "x"}).encode() + b"\n")
    assert preview(spec(path="columns.json"), tmp_path) is None
    assert preview(spec(path="texts.json", expected=None), tmp_path) is None
    assert preview(spec(path="bom.jsonl"), tmp_path) == [Example("0", {"q": "a"}, "x")]


# ------------------------------------------------------------------ JSON Lines read without datasets


def _through_datasets(monkeypatch: pytest.MonkeyPatch, case_spec: DatasetSpec, root: Path) -> list[Example] | str:
    with monkeypatch.context() as patched:
        patched.setattr(dataset, "_plain_json_lines", lambda path: None)
        return _examples_or_error(case_spec, root)


def _examples_or_error(case_spec: DatasetSpec, root: Path) -> list[Example] | str:
    try:
        return load_examples(case_spec, root)
    except DatasetError as exc:
        return f"error: {exc}"


PLAIN_FILES = {
    "plain": b"".join(json.dumps(r).encode() + b"\n" for r in ROWS),
    "blank lines, BOM, CRLF, keys reordered, nulls": (
        b'\xef\xbb\xbf{"rid": "a1", "review": "Loved it", "label": 1, "score": 0.5, "ok": true, "note": null}\r\n'
        b'\r\n   \n{"label": 0, "rid": "a2", "review": "Dull \\u00e9\\n\\"x\\"", "score": 2.0, "ok": false, '
        b'"note": null}\n{"rid": "a3", "review": null, "label": 1, "score": null, "ok": null, "note": null}'),
}
DATASETS_FILES = {  # each read (or refused) by datasets, not here
    "nested values": b'{"rid": "a1", "review": {"t": "x"}, "label": 1}\n',
    "int and float in a column": b'{"rid": "a1", "review": "x", "label": 1}\n{"rid": "a2", "review": "y", "label": 0.5}\n',
    "a missing key": b'{"rid": "a1", "review": "x", "label": 1}\n{"rid": "a2", "label": 0}\n',
    "a repeated key": b'{"rid": "a1", "review": "x", "label": 1, "label": 0}\n',
    "NaN": b'{"rid": "a1", "review": "x", "label": NaN}\n',
    "not JSON": b'{"rid": "a1", "review": "x", "label": 1}\n{"rid": \n',
    "a surrogate pair": b'{"rid": "a1", "review": "\\ud83d\\ude00", "label": 1}\n',
    "an integer beyond 64 bits": b'{"rid": "a1", "review": "x", "label": 18446744073709551616}\n',
    "a date (Arrow: a timestamp)": b'{"rid": "a1", "review": "x", "when": "2020-01-01", "label": 1}\n',
}


@pytest.mark.parametrize("name", PLAIN_FILES)
def test_plain_json_lines_give_the_examples_datasets_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           name: str) -> None:
    """Loading the 25k-review IMDB file through datasets took a second (its import, an Arrow cache on disk): a file
    of plain rows is read with the json module, and its examples are datasets' own, value for value and type for
    type, in every sampling."""
    (tmp_path / "r.jsonl").write_bytes(PLAIN_FILES[name])
    assert dataset._plain_json_lines(tmp_path / "r.jsonl") is not None  # the path under test is the one taken
    for case_spec in (spec(path="r.jsonl", id="rid", expected="label"),
                      spec(path="r.jsonl", id="rid", expected="label", label_names=["neg", "pos"], shuffle=True, seed=3),
                      spec(path="r.jsonl", expected="label", stratify="label", limit=2, columns={"text": "review"})):
        fast = load_examples(case_spec, tmp_path)
        slow = _through_datasets(monkeypatch, case_spec, tmp_path)
        assert fast == slow
        assert [[type(v) for v in e.fields.values()] for e in fast] == [[type(v) for v in e.fields.values()]
                                                                          for e in slow]  # type: ignore[union-attr]
        assert [list(e.fields) for e in fast] == [list(e.fields) for e in slow]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", DATASETS_FILES)
def test_json_lines_only_datasets_reads_go_to_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       name: str) -> None:
    (tmp_path / "r.jsonl").write_bytes(DATASETS_FILES[name])
    assert dataset._plain_json_lines(tmp_path / "r.jsonl") is None
    case_spec = spec(path="r.jsonl", id="rid", expected=None)
    assert repr(_examples_or_error(case_spec, tmp_path)) == repr(_through_datasets(monkeypatch, case_spec, tmp_path))


def test_a_plain_json_lines_run_does_not_import_datasets(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", ROWS)
    code = ("import sys; from pathlib import Path; from evalsuite.cases.schema import DatasetSpec; "
            "from evalsuite.dataset import load_examples; "
            f"rows = load_examples(DatasetSpec(path='r.jsonl', id='rid', expected='label'), Path({str(tmp_path)!r})); "
            "print(len(rows), 'datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["6", "False"]


@pytest.mark.skipif(not IMDB.exists(), reason="the shared 25k-row IMDB file is not on this machine")
def test_the_25k_imdb_file_reads_as_datasets_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case_spec = spec(path=str(IMDB), id="id", expected="label", label_names=["negative", "positive"])
    fast = load_examples(case_spec, tmp_path)
    assert len(fast) == 24999 and fast == _through_datasets(monkeypatch, case_spec, tmp_path)
