"""Text-overlap metrics against sacrebleu and rouge_score on the same inputs."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from evalsuite.cases.schema import MetricSpec
from evalsuite.errors import EvalsuiteWarning, MetricError, MetricParamError
from evalsuite.metrics import get_metric
from evalsuite.metrics._text import ROUGE_BACKEND_ENV
from tests._support.scored import scored, value_of
from tests._support.texts import HYPS, REFS


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
    assert value_of("sacrebleu", items, lowercase=True, smooth_method="none", tokenize="intl") == pytest.approx(expected.score)


def test_sacrebleu_multiple_references_use_streams_not_per_example_lists():
    second = ["A cat sat on a mat.", "Hello world", "A truly great film.", "Paris is France's capital.", "A fox.", "Skip it."]
    refs = [[a, b] for a, b in zip(REFS, second)]
    correct = sacrebleu.corpus_bleu(HYPS, [REFS, second]).score  # stream k = every example's k-th reference
    value = value_of("sacrebleu", [scored(h, r) for h, r in zip(HYPS, refs)])
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
    assert value_of("sacrebleu", items) == pytest.approx(sacrebleu.corpus_bleu(hyps, [REFS]).score)
    assert get_metric("rouge1", MetricSpec()).score(items)[1] == 0.0


def test_text_metric_without_reference_says_how_to_fix():
    with pytest.raises(MetricError, match="needs a reference text.*dataset.expected"):
        get_metric("sacrebleu", MetricSpec()).score([scored("a", None)])


def test_bleu_equals_sacrebleu_without_smoothing_on_single_references():
    value = value_of("bleu", [scored(h, r) for h, r in zip(HYPS, REFS)])
    assert value == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS], smooth_method="none").score / 100, abs=1e-12)
    assert 0 < value < 1


def test_bleu_brevity_penalty_uses_the_shortest_reference():
    hyp, refs = "a b c d e f g", ["a b c d e", "a b c d e f g h"]
    # sacrebleu takes the closest reference (8 tokens): BP = exp(1 - 8/7)
    closest = sacrebleu.corpus_bleu([hyp], [[refs[0]], [refs[1]]], smooth_method="none").score
    assert closest == pytest.approx(100 * math.exp(1 - 8 / 7))
    # evaluate's bleu (tensorflow/nmt) takes the shortest (5 tokens): BP = 1, every n-gram matches
    assert value_of("bleu", [scored(hyp, refs)]) == pytest.approx(1.0)


def test_bleu_smoothing_and_zero_cases():
    # "Hello world!" vs "Hello, world.": 13a tokens [Hello world !] / [Hello , world .]; no bigram matches
    assert value_of("bleu", [scored("Hello world!", "Hello, world.")]) == 0.0
    smoothed = value_of("bleu", [scored("Hello world!", "Hello, world.")], smooth=True)
    # add-one on orders 2..4: p1 = 2/3, p2 = 1/3, p3 = 1/2, p4 = 1; BP = exp(1 - 4/3)
    expected = math.exp((math.log(2 / 3) + math.log(1 / 3) + math.log(1 / 2) + math.log(1)) / 4) * math.exp(1 - 4 / 3)
    assert smoothed == pytest.approx(expected)
    assert value_of("bleu", [scored("", "a b c")]) == 0.0


@pytest.mark.parametrize("word_order", [0, 2])
def test_chrf_equals_corpus_chrf(word_order):
    expected = sacrebleu.corpus_chrf(HYPS, [REFS], word_order=word_order).score
    assert value_of("chrf", [scored(h, r) for h, r in zip(HYPS, REFS)], word_order=word_order) == pytest.approx(expected, abs=1e-9)


@pytest.mark.filterwarnings("ignore::evalsuite.errors.EvalsuiteWarning")  # the Japanese pair: its own test below
@pytest.mark.parametrize("use_stemmer", [False, True])
@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_is_the_mean_of_rouge_score_f1(rouge_type, use_stemmer):
    hyps = [*HYPS, "First sentence here.\nSecond one follows running.", "日本語のテキスト"]
    refs = [*REFS, "Second one follows.\nFirst sentence is here, runs.", "日本語のテキスト"]
    scorer = RougeScorer([rouge_type], use_stemmer=use_stemmer)
    expected = np.mean([scorer.score(r, h)[rouge_type].fmeasure for h, r in zip(hyps, refs)])
    value = value_of(rouge_type, [scored(h, r) for h, r in zip(hyps, refs)], use_stemmer=use_stemmer)
    assert value == pytest.approx(expected, abs=1e-12)


def test_rouge_several_references_take_the_best():
    refs = [[r, h] for h, r in zip(HYPS, REFS)]
    scorer = RougeScorer(["rouge2"])
    expected = np.mean([scorer.score_multi(r, h)["rouge2"].fmeasure for h, r in zip(HYPS, refs)])
    assert value_of("rouge2", [scored(h, r) for h, r in zip(HYPS, refs)]) == pytest.approx(expected) == 1.0


ROUGE_HYPS = [*HYPS, "First sentence here.\nSecond one follows running.", "a cat", ""]
ROUGE_REFS = [*REFS, "Second one follows.\nFirst sentence is here, runs.", ["the cat", "a dog"], "nothing matches"]


def rouge_values_and_definitions(use_stemmer: bool) -> tuple[dict[str, list[float]], set[str]]:
    items = [scored(h, r) for h, r in zip(ROUGE_HYPS, ROUGE_REFS)]
    spec = MetricSpec(params={"use_stemmer": use_stemmer})
    metrics = [get_metric(rouge_type, spec) for rouge_type in ["rouge1", "rouge2", "rougeL", "rougeLsum"]]
    return {m.name: m.score(items) for m in metrics}, {m.definition.rsplit("Computed by ", 1)[1] for m in metrics}


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_backends_give_identical_numbers_and_the_definition_names_the_one_used(monkeypatch, use_stemmer):
    pytest.importorskip("rouge_score_rs")  # the `fast` extra, part of the test extra
    fast, fast_by = rouge_values_and_definitions(use_stemmer)
    monkeypatch.setenv(ROUGE_BACKEND_ENV, "rouge-score")
    reference, reference_by = rouge_values_and_definitions(use_stemmer)
    assert fast == reference  # per-example F1, exactly
    [fast_computed_by] = fast_by
    assert fast_computed_by.startswith("rouge-score-rs ") and fast_computed_by.endswith("with identical scores)")
    assert reference_by == {"rouge-score 0.1.2"}


def test_rouge_without_the_fast_extra_is_computed_by_rouge_score(monkeypatch):
    monkeypatch.setitem(sys.modules, "rouge_score_rs", None)  # as if rouge-score-rs were not installed
    values, computed_by = rouge_values_and_definitions(use_stemmer=False)
    scorer = RougeScorer(["rouge2"])
    assert values["rouge2"] == [scorer.score_multi(r if isinstance(r, list) else [r], h)["rouge2"].fmeasure
                                for h, r in zip(ROUGE_HYPS, ROUGE_REFS)]
    assert computed_by == {"rouge-score 0.1.2"}
    monkeypatch.setenv(ROUGE_BACKEND_ENV, "rouge-score-rs")
    with pytest.raises(MetricError, match=r"rouge-score-rs is not installed; .*`pip install 'evalsuite\[fast\]'"):
        get_metric("rouge1", MetricSpec())


def test_unknown_rouge_backend_says_which_exist(monkeypatch):
    monkeypatch.setenv(ROUGE_BACKEND_ENV, "rouge_score")
    with pytest.raises(MetricError, match=f"{ROUGE_BACKEND_ENV}='rouge_score' is not a ROUGE backend; did you mean "
                                          "'rouge-score'\\? backends: rouge-score-rs, rouge-score"):
        get_metric("rougeL", MetricSpec())


@pytest.mark.parametrize("name", ["sacrebleu", "chrf", "bleu", "perplexity"])
def test_bootstrap_fast_path_equals_aggregate_per_resample(name):
    items = [scored(h, r, token_logprobs=[-0.1 * (i + 1)] * (i + 1)) for i, (h, r) in enumerate(zip(HYPS, REFS))]
    metric = get_metric(name, MetricSpec())
    values = metric.score(items)
    idx = np.random.default_rng(0).integers(0, len(values), size=(5, len(values)))
    expected = [metric.aggregate([values[i] for i in row]) for row in idx]
    assert metric.aggregate_resamples(values, idx) == pytest.approx(expected, abs=1e-9)


NON_ASCII_HYPS = ["今天天气很好", "Привет, мир!", "the cat sat"]
NON_ASCII_REFS = ["今天天气不好", "Привет, друзья!", "the cat sat down"]


def test_rouge_warns_when_the_default_tokenizer_drops_non_ascii_text():
    """Issue 16 item 9: Chinese and Russian answers scored 0 without a word."""
    metric = get_metric("rouge1", MetricSpec())
    with pytest.warns(EvalsuiteWarning, match=r"rouge1: the default rouge_score tokenizer keeps only \[a-z0-9\], so 2 of 3 "
                                              r"examples lost non-ASCII text .*Set `rouge1: \{tokenizer: unicode\}`"):
        values = metric.score([scored(h, r) for h, r in zip(NON_ASCII_HYPS, NON_ASCII_REFS)])
    assert values[:2] == [0.0, 0.0]


def test_rouge_unicode_tokenizer_scores_any_script_and_leaves_ascii_numbers_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no lost-text warning: nothing is lost
        values = get_metric("rouge1", MetricSpec(params={"tokenizer": "unicode"})).score(
            [scored(h, r) for h, r in zip(NON_ASCII_HYPS, NON_ASCII_REFS)])
    assert values == pytest.approx([5 / 6, 0.5, RougeScorer(["rouge1"]).score("the cat sat down", "the cat sat")["rouge1"].fmeasure])
    ascii_items = [scored(h, r) for h, r in zip(ROUGE_HYPS, ROUGE_REFS)]
    for rouge_type in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert value_of(rouge_type, ascii_items, tokenizer="unicode") == value_of(rouge_type, ascii_items)
    assert "tokenizer: unicode" in get_metric("rougeL", MetricSpec(params={"tokenizer": "unicode"})).definition


def test_rouge_unicode_tokenizer_gives_identical_numbers_on_both_backends(monkeypatch):
    pytest.importorskip("rouge_score_rs")
    items = [scored(h, r) for h, r in zip([*NON_ASCII_HYPS, "東京タワーに行きました"], [*NON_ASCII_REFS, "東京に行きました"])]
    metrics = lambda: [get_metric(t, MetricSpec(params={"tokenizer": "unicode"})) for t in ("rouge1", "rouge2", "rougeL")]  # noqa: E731
    fast = [m.score(items) for m in metrics()]
    monkeypatch.setenv(ROUGE_BACKEND_ENV, "rouge-score")
    assert [m.score(items) for m in metrics()] == fast


def test_rouge_tokenizer_param_is_checked():
    with pytest.raises(MetricParamError, match="tokenizer must be one of default, unicode; got 'chinese'"):
        get_metric("rouge1", MetricSpec(params={"tokenizer": "chinese"}))
    with pytest.raises(MetricParamError, match="use_stemmer .* works with the default tokenizer only"):
        get_metric("rouge1", MetricSpec(params={"tokenizer": "unicode", "use_stemmer": True}))
