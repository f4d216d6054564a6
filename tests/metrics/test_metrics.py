"""Every metric against the reference library's number on the same inputs, plus the registry's errors."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from evalsuite.cases.schema import MetricSpec
from evalsuite.metrics import MetricError, MetricParamError, UnknownName, _parallel, classification, get_metric, names
from evalsuite.records import Answer, Example, Scored
from evalsuite.verdict.stats import bootstrap_ci

HYPS = [
    "The cat sat on the mat.",
    "Hello world!",
    "It was a truly great film, with superb acting and a moving story.",
    "Paris is the capital of France",
    "the quick brown fox jumped over the lazy dog",
    "I would not recommend this movie to anyone.",
]
REFS = [
    "The cat is sitting on the mat.",
    "Hello, world.",
    "It was a great film with superb acting and a moving plot.",
    "The capital of France is Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "I would not recommend this film to anybody.",
]


def scored(prediction, expected, *, parsed=True, text=None, **answer) -> Scored:
    text = text if text is not None else (prediction if isinstance(prediction, str) else None)
    return Scored(
        example=Example(id="e", fields={}, expected=expected),
        answer=Answer("e", 0, text=text, **answer),
        prompt_hash="h",
        prediction=prediction if parsed else None,
        parsed=parsed,
    )


def run(name: str, items: list[Scored], **params) -> float:
    metric = get_metric(name, MetricSpec(params=params))
    return metric.aggregate(metric.score(items))


# -- labels --------------------------------------------------------------------------------------------

Y_TRUE = ["pos", "neg", "neu", "pos", "neg", "pos", "neu", "neg", "pos", "neg"]
Y_PRED = ["pos", "neg", "pos", None, "neg", "neu", "neu", "pos", "pos", None]  # None = unparsed


def label_batch() -> list[Scored]:
    return [scored(p, t, parsed=p is not None, text=p or "no idea") for p, t in zip(Y_PRED, Y_TRUE)]


def test_accuracy_counts_unparsed_as_wrong():
    expected = accuracy_score(Y_TRUE, [p or "<unparsed>" for p in Y_PRED])
    assert run("accuracy", label_batch()) == pytest.approx(expected) == 0.5
    assert run("accuracy", [scored("4", 4), scored(4, ["3", "4"]), scored("4", "4 ")]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize("name,index", [("precision", 0), ("recall", 1), ("f1", 2)])
def test_prf_equals_sklearn(name, index, average):
    y_pred = [p or "<unparsed>" for p in Y_PRED]
    labels = ["neg", "neu", "pos"]  # the unparsed answers are wrong, not a class of their own
    expected = precision_recall_fscore_support(Y_TRUE, y_pred, labels=labels, average=average, zero_division=0)[index]
    assert run(name, label_batch(), average=average) == pytest.approx(expected, abs=1e-12)


def test_binary_f1_with_pos_label():
    y_true = ["pos", "neg", "pos", "pos", "neg", "neg"]
    y_pred = ["pos", "pos", "neg", "pos", "neg", "neg"]
    items = [scored(p, t) for p, t in zip(y_pred, y_true)]
    for name, index in (("precision", 0), ("recall", 1), ("f1", 2)):
        expected = precision_recall_fscore_support(y_true, y_pred, pos_label="pos", average="binary", zero_division=0)[index]
        assert run(name, items, average="binary", pos_label="pos") == pytest.approx(expected)
    items[0] = scored(None, "pos", parsed=False, text="?")  # an unparsed positive is a missed positive
    assert run("recall", items, average="binary", pos_label="pos") == pytest.approx(1 / 3)


def test_f1_of_a_subset_is_recomputed_from_the_pairs():
    metric = get_metric("f1", MetricSpec())
    values = metric.score(label_batch())
    assert metric.aggregate(values[:3]) == pytest.approx(
        precision_recall_fscore_support(Y_TRUE[:3], Y_PRED[:3], labels=["neg", "neu", "pos"], average="macro", zero_division=0)[2]
    )


def test_exact_match_contains_and_regex():
    items = [scored(" Paris ", "paris"), scored("Paris", "Paris"), scored(None, "Paris", parsed=False, text="Paris?")]
    assert run("exact_match", items) == pytest.approx(1 / 3)
    assert run("exact_match", items, ignore_case=True) == pytest.approx(2 / 3)
    assert run("exact_match", items, strip=False, ignore_case=True) == pytest.approx(1 / 3)
    # contains reads the raw answer text: the unparsed "Paris?" still contains "Paris"
    assert run("contains", items) == pytest.approx(2 / 3)
    assert run("contains", items, ignore_case=True) == pytest.approx(1.0)
    errored = scored(None, "x", parsed=False, error="boom")
    assert get_metric("contains", MetricSpec()).score([errored]) == [0]
    answers = [scored(None, None, parsed=False, text=t) for t in ("Answer: 42", "answer: x", "none")]
    assert run("regex_match", answers, pattern=r"Answer: \d+") == pytest.approx(1 / 3)
    assert run("regex_match", answers, pattern=r"answer:", ignore_case=True) == pytest.approx(2 / 3)


# -- text overlap --------------------------------------------------------------------------------------


def test_sacrebleu_equals_corpus_bleu_and_states_its_signature():
    metric = get_metric("sacrebleu", MetricSpec())
    values = metric.score([scored(h, r) for h, r in zip(HYPS, REFS)])
    assert metric.aggregate(values) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-9)
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in metric.definition
    # any subset re-aggregates to corpus BLEU of that subset (what the baseline comparison needs)
    assert metric.aggregate(values[2:5]) == pytest.approx(sacrebleu.corpus_bleu(HYPS[2:5], [REFS[2:5]]).score)


def test_sacrebleu_params():
    items = [scored(h.upper(), r) for h, r in zip(HYPS, REFS)]
    expected = sacrebleu.corpus_bleu([h.upper() for h in HYPS], [REFS], lowercase=True, smooth_method="none", tokenize="intl")
    assert run("sacrebleu", items, lowercase=True, smooth_method="none", tokenize="intl") == pytest.approx(expected.score)


def test_sacrebleu_multiple_references_use_streams_not_per_example_lists():
    second = ["A cat sat on a mat.", "Hello world", "A truly great film.", "Paris is France's capital.", "A fox.", "Skip it."]
    refs = [[a, b] for a, b in zip(REFS, second)]
    correct = sacrebleu.corpus_bleu(HYPS, [REFS, second]).score  # stream k = every example's k-th reference
    value = run("sacrebleu", [scored(h, r) for h, r in zip(HYPS, refs)])
    assert value == pytest.approx(correct, abs=1e-9)
    # references given per example is the layout that silently gives a different score in sacrebleu
    assert value != pytest.approx(sacrebleu.corpus_bleu(HYPS[:2], refs[:2]).score)
    # a varying number of references: sacrebleu pads streams with None
    ragged = [[r] for r in REFS[:3]] + refs[3:]
    padded = [REFS, [None, None, None, *second[3:]]]
    metric = get_metric("sacrebleu", MetricSpec())
    ours = metric.aggregate(metric.score([scored(h, r) for h, r in zip(HYPS, ragged)]))
    assert ours == pytest.approx(sacrebleu.corpus_bleu(HYPS, padded).score, abs=1e-9)
    assert "nrefs:var" in metric.definition


def test_unparsed_answer_is_an_empty_hypothesis():
    items = [scored(h, r) for h, r in zip(HYPS, REFS)]
    items[1] = scored(None, REFS[1], parsed=False, text="garbage")
    hyps = list(HYPS)
    hyps[1] = ""
    assert run("sacrebleu", items) == pytest.approx(sacrebleu.corpus_bleu(hyps, [REFS]).score)
    assert get_metric("rouge1", MetricSpec()).score(items)[1] == 0.0


def test_text_metric_without_reference_says_how_to_fix():
    with pytest.raises(MetricError, match="needs a reference text.*dataset.expected"):
        get_metric("sacrebleu", MetricSpec()).score([scored("a", None)])


def test_bleu_equals_sacrebleu_without_smoothing_on_single_references():
    value = run("bleu", [scored(h, r) for h, r in zip(HYPS, REFS)])
    assert value == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS], smooth_method="none").score / 100, abs=1e-12)
    assert 0 < value < 1


def test_bleu_brevity_penalty_uses_the_shortest_reference():
    hyp, refs = "a b c d e f g", ["a b c d e", "a b c d e f g h"]
    # sacrebleu takes the closest reference (8 tokens): BP = exp(1 - 8/7)
    closest = sacrebleu.corpus_bleu([hyp], [[refs[0]], [refs[1]]], smooth_method="none").score
    assert closest == pytest.approx(100 * math.exp(1 - 8 / 7))
    # evaluate's bleu (tensorflow/nmt) takes the shortest (5 tokens): BP = 1, every n-gram matches
    assert run("bleu", [scored(hyp, refs)]) == pytest.approx(1.0)


def test_bleu_smoothing_and_zero_cases():
    # "Hello world!" vs "Hello, world.": 13a tokens [Hello world !] / [Hello , world .]; no bigram matches
    assert run("bleu", [scored("Hello world!", "Hello, world.")]) == 0.0
    smoothed = run("bleu", [scored("Hello world!", "Hello, world.")], smooth=True)
    # add-one on orders 2..4: p1 = 2/3, p2 = 1/3, p3 = 1/2, p4 = 1; BP = exp(1 - 4/3)
    expected = math.exp((math.log(2 / 3) + math.log(1 / 3) + math.log(1 / 2) + math.log(1)) / 4) * math.exp(1 - 4 / 3)
    assert smoothed == pytest.approx(expected)
    assert run("bleu", [scored("", "a b c")]) == 0.0


@pytest.mark.parametrize("word_order", [0, 2])
def test_chrf_equals_corpus_chrf(word_order):
    expected = sacrebleu.corpus_chrf(HYPS, [REFS], word_order=word_order).score
    assert run("chrf", [scored(h, r) for h, r in zip(HYPS, REFS)], word_order=word_order) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("use_stemmer", [False, True])
@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_is_the_mean_of_rouge_score_f1(rouge_type, use_stemmer):
    hyps = [*HYPS, "First sentence here.\nSecond one follows running.", "日本語のテキスト"]
    refs = [*REFS, "Second one follows.\nFirst sentence is here, runs.", "日本語のテキスト"]
    scorer = RougeScorer([rouge_type], use_stemmer=use_stemmer)
    expected = np.mean([scorer.score(r, h)[rouge_type].fmeasure for h, r in zip(hyps, refs)])
    value = run(rouge_type, [scored(h, r) for h, r in zip(hyps, refs)], use_stemmer=use_stemmer)
    assert value == pytest.approx(expected, abs=1e-12)


def test_rouge_several_references_take_the_best():
    refs = [[r, h] for h, r in zip(HYPS, REFS)]
    scorer = RougeScorer(["rouge2"])
    expected = np.mean([scorer.score_multi(r, h)["rouge2"].fmeasure for h, r in zip(HYPS, refs)])
    assert run("rouge2", [scored(h, r) for h, r in zip(HYPS, refs)]) == pytest.approx(expected) == 1.0


def _pids(items: list[int]) -> list[int]:
    return [os.getpid() for _ in items]


def test_map_chunks_uses_a_worker_and_keeps_order(monkeypatch):
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)
    monkeypatch.setattr(_parallel, "cpus", lambda: 2)
    assert _parallel.map_chunks(lambda items, k: [x * k for x in items], list(range(3)), 2) == [0, 2, 4]  # too few: in-process
    pids = _parallel.map_chunks(_pids, list(range(64)))
    assert len(pids) == 64 and len(set(pids)) == 2 and pids[-1] == os.getpid()


def test_large_batches_split_across_processes_give_identical_values(monkeypatch):
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)
    monkeypatch.setattr(_parallel, "cpus", lambda: 2)
    items = [scored(h, r) for h, r in zip(HYPS * 3, REFS * 3)]
    for name in ("sacrebleu", "bleu", "chrf"):
        metric = get_metric(name, MetricSpec())
        parallel = metric.score(items)
        monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 10**9)
        assert parallel == metric.score(items)
        monkeypatch.setattr(_parallel, "PARALLEL_MIN_ITEMS", 4)


# -- logprobs and usage --------------------------------------------------------------------------------


def test_perplexity_is_corpus_level():
    logprobs = [[-0.1, -2.0], [-0.5, -0.5, -0.5, -0.2], [-3.0]]
    items = [scored("x", None, token_logprobs=lp) for lp in logprobs]
    items.append(scored(None, None, parsed=False, error="timeout", error_kind="timeout"))
    metric = get_metric("perplexity", MetricSpec())
    values = metric.score(items)
    assert values[-1] is None  # errored: not measured
    flat = [x for lp in logprobs for x in lp]
    assert metric.aggregate(values) == pytest.approx(float(np.exp(-np.mean(flat))))
    assert metric.needs_logprobs and not metric.higher_is_better


def test_perplexity_without_logprobs_tells_the_user_what_to_set():
    with pytest.raises(MetricError, match=r"model\.logprobs: true"):
        get_metric("perplexity", MetricSpec()).score([scored("x", None)])


def test_latency_percentiles_and_token_means():
    latencies = [0.2, 1.5, 0.4, 0.9, 3.0, 0.7, 0.3]
    items = [scored("x", None, latency_s=s, prompt_tokens=10 + i, completion_tokens=2 * i) for i, s in enumerate(latencies)]
    items.append(scored(None, None, parsed=False, error="x", latency_s=60.0))
    assert run("latency_p50", items) == pytest.approx(np.percentile(latencies, 50))
    assert run("latency_p95", items) == pytest.approx(np.percentile(latencies, 95, method="linear"))
    assert run("prompt_tokens", items) == pytest.approx(13.0)
    assert run("completion_tokens", items) == pytest.approx(6.0)
    assert not get_metric("latency_p95", MetricSpec()).higher_is_better


# -- registry ------------------------------------------------------------------------------------------


def test_names_and_metric_attributes():
    assert names() == sorted(names(), key=str.lower)
    assert set(names()) == {
        "accuracy", "precision", "recall", "f1", "exact_match", "contains", "regex_match", "sacrebleu", "bleu", "chrf",
        "rouge1", "rouge2", "rougeL", "rougeLsum", "perplexity", "latency_p50", "latency_p95", "prompt_tokens",
        "completion_tokens",
    }  # fmt: skip
    params = {"regex_match": {"pattern": "x"}}
    for name in names():
        metric = get_metric(name, MetricSpec(params=params.get(name, {})))
        assert metric.name == name and metric.kind in ("proportion", "mean", "corpus") and metric.definition


def test_unknown_metric_lists_valid_names_and_suggests_one():
    with pytest.raises(UnknownName) as info:
        get_metric("acuracy", MetricSpec())
    message = str(info.value)
    assert message.startswith("unknown metric 'acuracy'; valid: accuracy, bleu, chrf,")
    assert message.endswith("did you mean 'accuracy'?")
    assert "did you mean" not in str(UnknownName("metric", "zzzzzz", names()))


def test_parameter_errors_name_the_fix():
    with pytest.raises(MetricParamError, match=r"f1: unknown parameter 'averge'; valid: average, pos_label; did you mean 'average'\?"):
        get_metric("f1", MetricSpec(params={"averge": "macro"}))
    with pytest.raises(MetricParamError, match="average must be one of macro, micro, binary, weighted; got 'mean'"):
        get_metric("f1", MetricSpec(params={"average": "mean"}))
    with pytest.raises(MetricParamError, match="binary needs pos_label"):
        get_metric("f1", MetricSpec(params={"average": "binary"}))
    with pytest.raises(MetricParamError, match="'pattern' is required"):
        get_metric("regex_match", MetricSpec())
    with pytest.raises(MetricParamError, match="not a valid regular expression"):
        get_metric("regex_match", MetricSpec(params={"pattern": "("}))
    with pytest.raises(MetricParamError, match="use_stemmer must be true or false"):
        get_metric("rouge1", MetricSpec(params={"use_stemmer": "yes"}))
    with pytest.raises(MetricParamError, match="accuracy: unknown parameter 'average'; valid: none"):
        get_metric("accuracy", MetricSpec(params={"average": "macro"}))


def test_short_form_keys_are_parameters():
    metric = get_metric("f1", MetricSpec.model_validate({"average": "micro", "min": 0.8}))
    assert metric.params == {"average": "micro", "pos_label": None}
    assert "micro-averaged" in metric.definition


@pytest.mark.parametrize("name", ["sacrebleu", "chrf", "bleu", "perplexity"])
def test_bootstrap_fast_path_equals_aggregate_per_resample(name):
    items = [scored(h, r, token_logprobs=[-0.1 * (i + 1)] * (i + 1)) for i, (h, r) in enumerate(zip(HYPS, REFS))]
    metric = get_metric(name, MetricSpec())
    values = metric.score(items)
    idx = np.random.default_rng(0).integers(0, len(values), size=(5, len(values)))
    expected = [metric.aggregate([values[i] for i in row]) for row in idx]
    assert metric.aggregate_resamples(values, idx) == pytest.approx(expected, abs=1e-9)


# "maybe" is only ever predicted; None is unparsed; small n so resamples often miss a class entirely.
PRF_PAIRS = [
    ("pos", "pos"), ("neg", "neg"), ("pos", "neu"), (None, "pos"), ("neg", "neg"), ("maybe", "pos"),
    ("neu", "neu"), ("pos", "neg"), ("pos", "pos"), (None, "neg"), ("maybe", "neu"), ("neg", "pos"),
]


@pytest.mark.parametrize(
    "params",
    [{"average": "macro"}, {"average": "micro"}, {"average": "weighted"},
     {"average": "binary", "pos_label": "pos"}, {"average": "binary", "pos_label": "maybe"}],
    ids=lambda p: "-".join(p.values()),
)
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_prf_bootstrap_fast_path_equals_sklearn_per_resample(name, params, monkeypatch):
    monkeypatch.setattr(classification, "_CHUNK_ELEMENTS", 5 * len(PRF_PAIRS))  # several chunks, one partial
    metric = get_metric(name, MetricSpec(params=params))
    values = metric.score([scored(p, t, parsed=p is not None, text=p or "?") for p, t in PRF_PAIRS])
    idx = np.random.default_rng(1).integers(0, len(values), size=(61, len(values)))
    idx[0] = 0  # one resample of a single correct example: every other class absent
    idx[1] = 3  # one of a single unparsed answer: no prediction at all
    expected = [metric.aggregate([values[i] for i in row]) for row in idx]
    assert metric.aggregate_resamples(values, idx) == pytest.approx(expected, abs=1e-12)


def test_f1_bootstrap_at_25k_examples_is_fast():
    rng = np.random.default_rng(0)
    labels = np.array(["pos", "neg", "neu"])
    truth = labels[rng.integers(0, 3, 25_000)]
    guess = np.where(rng.random(25_000) < 0.8, truth, labels[rng.integers(0, 3, 25_000)])
    items = [scored(p, t, parsed=i % 50 != 0, text=p) for i, (p, t) in enumerate(zip(guess.tolist(), truth.tolist()))]
    metric = get_metric("f1", MetricSpec())
    values = metric.score(items)
    start = time.perf_counter()
    low, high = bootstrap_ci(values, metric.aggregate, n_resamples=2000, batched=metric.aggregate_resamples)
    elapsed = time.perf_counter() - start
    assert low < metric.aggregate(values) < high
    assert elapsed < 2.0
