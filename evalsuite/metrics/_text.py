"""Text-overlap metrics: sacrebleu BLEU and chrF, HF-evaluate BLEU (tensorflow/nmt), ROUGE.

Why per-example sufficient statistics: BLEU and chrF are corpus metrics (not means of sentence scores).
Storing each example's n-gram counts lets ``aggregate`` recompute the exact corpus score for any subset,
which the baseline comparison and the bootstrap need, and lets large batches be counted on several cores.
The hypothesis is the parsed prediction; an unparsed or errored answer is scored as an empty hypothesis
(no matches, full reference length), so it counts as wrong.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import regex
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF
from sacrebleu.metrics.helpers import extract_all_word_ngrams
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from evalsuite.metrics._parallel import map_chunks
from evalsuite.errors import EvalsuiteWarning, MetricError, MetricParamError, suggest
from evalsuite.metrics._base import Metric, SummedStats
from evalsuite.metrics._registry import metric
from evalsuite.records import Scored

Pair = tuple[str, list[str]]  # (hypothesis, references)


def hypothesis(item: Scored) -> str:
    if not item.parsed or item.prediction is None:
        return ""
    return item.prediction if isinstance(item.prediction, str) else str(item.prediction)


def references(item: Scored, metric_name: str) -> list[str]:
    """``expected`` as a list of reference strings (a string is one reference)."""
    expected = item.example.expected
    refs = [expected] if isinstance(expected, str) else expected
    if not isinstance(refs, (list, tuple)) or not refs or not all(isinstance(r, str) for r in refs):
        raise MetricError(
            f"{metric_name} needs a reference text (or a list of texts) in `expected`; example "
            f"{item.example.id!r} has {expected!r}. Map the reference column with `dataset.expected`."
        )
    return list(refs)


def pairs(scored: Sequence[Scored], metric_name: str) -> list[Pair]:
    return [(hypothesis(item), references(item, metric_name)) for item in scored]


def ref_count(items: Sequence[Pair]) -> int:
    """Number of references per example, as sacrebleu's signature reports it (-1 prints as ``var``)."""
    counts = {len(refs) for _, refs in items}
    return counts.pop() if len(counts) == 1 else -1


def _sacrebleu_metric(cls_name: str, kwargs: dict[str, Any]) -> BLEU | CHRF:
    return {"BLEU": BLEU, "CHRF": CHRF}[cls_name](**kwargs)


def _sacrebleu_stats(items: Sequence[Pair], cls_name: str, kwargs: dict[str, Any]) -> list[list[int]]:
    """Per-example sufficient statistics, computed by sacrebleu's own corpus code.

    sacrebleu takes references as *streams* (stream k holds every example's k-th reference), the transpose
    of evalsuite's per-example lists; a shorter list is padded with ``None``, which sacrebleu skips.
    """
    scorer = _sacrebleu_metric(cls_name, kwargs)
    width = max(len(refs) for _, refs in items)
    streams: Any = [[refs[k] if k < len(refs) else None for _, refs in items] for k in range(width)]  # None: typed str
    stats = scorer._extract_corpus_statistics([hyp for hyp, _ in items], streams)
    return [[int(x) for x in row] for row in stats]


class _SacreMetric(SummedStats):
    """Shared by sacrebleu BLEU and chrF: statistics per example, the library's formula on their sum."""

    cls_name = ""
    _nrefs = 1
    needs_expected = True
    value_range = (0.0, 100.0)

    def kwargs(self) -> dict[str, Any]:
        """The scorer's constructor arguments: the metric's parameters, named as sacrebleu names them."""
        return dict(self.params)

    def signature(self) -> str:
        scorer = _sacrebleu_metric(self.cls_name, self.kwargs())
        scorer.num_refs = self._nrefs
        return str(scorer.get_signature())

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        items = pairs(scored, self.name)
        if not items:
            return []
        self._nrefs = ref_count(items)
        self.definition = self.describe()  # the signature states the number of references seen
        return map_chunks(_sacrebleu_stats, items, self.cls_name, self.kwargs())

    def from_totals(self, totals: list[float]) -> float:
        scorer = _sacrebleu_metric(self.cls_name, self.kwargs())
        return float(scorer._compute_score_from_stats([int(x) for x in totals]).score)


@metric("sacrebleu")
class SacreBleu(_SacreMetric):
    cls_name = "BLEU"
    defaults = {"tokenize": "13a", "smooth_method": "exp", "lowercase": False}
    choices = {"tokenize": tuple(BLEU.TOKENIZERS), "smooth_method": tuple(BLEU.SMOOTH_DEFAULTS)}

    def describe(self) -> str:
        return (
            "corpus BLEU, 0-100, exactly sacrebleu.corpus_bleu on all examples (n-gram counts summed over the "
            f"corpus, not a mean of sentence scores); signature {self.signature()}; brevity penalty from the "
            "closest reference length; several references per example allowed (expected as a list)"
        )


@metric("chrf")
class ChrF(_SacreMetric):
    cls_name = "CHRF"
    defaults = {"char_order": CHRF.CHAR_ORDER, "word_order": CHRF.WORD_ORDER, "beta": CHRF.BETA, "lowercase": False}

    def describe(self) -> str:
        return (
            "corpus chrF, 0-100, exactly sacrebleu.corpus_chrf (character n-gram F-beta from statistics summed "
            f"over the corpus; word_order 2 = chrF++); signature {self.signature()}; several references: best "
            "statistics per example"
        )


def _nmt_stats(items: Sequence[Pair], max_order: int) -> list[list[int]]:
    """[translation length, shortest reference length, matches per order..., possible matches per order...].

    The tensorflow/nmt ``compute_bleu`` counts used by HF evaluate's "bleu": 13a tokens, reference n-gram
    counts merged by maximum over references, hypothesis counts clipped by them.
    """
    tokenize = Tokenizer13a()
    rows = []
    for hyp, refs in items:
        hyp_ngrams, hyp_len = extract_all_word_ngrams(tokenize(hyp), 1, max_order)
        merged: Counter[tuple[str, ...]] = Counter()
        ref_lens = []
        for ref in refs:
            ngrams, length = extract_all_word_ngrams(tokenize(ref), 1, max_order)
            merged |= ngrams
            ref_lens.append(length)
        matches = [0] * max_order
        for ngram, count in (hyp_ngrams & merged).items():
            matches[len(ngram) - 1] += count
        possible = [max(0, hyp_len - order + 1) for order in range(1, max_order + 1)]
        rows.append([hyp_len, min(ref_lens), *matches, *possible])
    return rows


@metric("bleu")
class NmtBleu(SummedStats):
    defaults = {"max_order": 4, "smooth": False}
    needs_expected = True
    value_range = (0.0, 1.0)

    def describe(self) -> str:
        smoothing = "add-one (Lin & Och 2004) on orders > 1" if self.params["smooth"] else "none"
        return (
            "corpus BLEU, 0-1, as HF evaluate's 'bleu' (tensorflow/nmt compute_bleu): 13a tokenizer, "
            f"max_order {self.params['max_order']}, smoothing {smoothing}, brevity penalty from the SHORTEST "
            "reference of each example (sacrebleu uses the closest); 0 when there are no tokens to compare"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        items = pairs(scored, self.name)
        return map_chunks(_nmt_stats, items, self.params["max_order"]) if items else []

    def from_totals(self, total: list[float]) -> float:
        order = self.params["max_order"]
        translation_length, reference_length = total[0], total[1]
        matches, possible = total[2 : 2 + order], total[2 + order :]
        if translation_length == 0 or reference_length == 0:
            return 0.0  # nmt divides by zero here; no tokens means no overlap
        precisions = []
        for i in range(order):
            if self.params["smooth"] and i > 0:
                precisions.append((matches[i] + 1.0) / (possible[i] + 1.0))
            else:
                precisions.append(matches[i] / possible[i] if possible[i] > 0 else 0.0)
        if min(precisions) <= 0:
            return 0.0
        geo_mean = math.exp(sum(math.log(p) for p in precisions) / order)
        ratio = translation_length / reference_length
        brevity = 1.0 if ratio > 1.0 else math.exp(1 - 1 / ratio)
        return geo_mean * brevity


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_BACKEND_ENV = "EVALSUITE_ROUGE_BACKEND"
ROUGE_BACKENDS = ("rouge-score-rs", "rouge-score")  # fastest first
_rouge_cache: dict[Any, dict[str, list[float]]] = {}


def rouge_backend() -> str:
    """The package that computes ROUGE: rouge-score-rs (the ``fast`` extra) when installed, else rouge-score.

    Why a choice: rouge-score-rs is a young Rust port (scores identical to rouge_score, checked by the tests
    and benchmarks/metrics_speed.py) that scores a batch on all cores; rouge-score is the reference. The
    environment variable forces one, to check a number against the reference or to rule the port out.
    """
    forced = os.environ.get(ROUGE_BACKEND_ENV, "").strip()
    if forced and forced not in ROUGE_BACKENDS:
        raise MetricError(f"{ROUGE_BACKEND_ENV}={forced!r} is not a ROUGE backend; "
                          f"{suggest(forced, ROUGE_BACKENDS, 'backends')} (unset it: the fastest one installed)")
    port_installed = importlib.util.find_spec("rouge_score_rs") is not None
    if forced == "rouge-score-rs" and not port_installed:
        raise MetricError(f"{ROUGE_BACKEND_ENV}=rouge-score-rs, but rouge-score-rs is not installed; "
                          "install it with `pip install 'evalsuite[fast]'`, or unset the variable")
    return forced or ("rouge-score-rs" if port_installed else "rouge-score")


ROUGE_TOKENIZERS = ("default", "unicode")
_NON_ASCII_WORD = re.compile(r"(?=[^\x00-\x7f])[^\W_]")  # a letter or digit the default tokenizer drops
# unicode: every Han / Hiragana / Katakana character is a token (no spaces between words there), else a
# maximal run of letters, marks and digits.
_KANA_HAN = r"[\p{Han}\p{Hiragana}\p{Katakana}\u30fc]"  # U+30FC, the long-vowel mark, is in no script
_UNICODE_TOKEN = regex.compile(rf"{_KANA_HAN}|(?:(?!{_KANA_HAN})[\p{{L}}\p{{M}}\p{{N}}])+")


class UnicodeTokenizer:
    """``tokenizer: unicode``: NFKC-normalized, casefolded, letters and digits of any script kept.

    Why ours rather than a backend's: the same Python object is handed to rouge-score and rouge-score-rs,
    so both backends score identical tokens. On ASCII text it yields the default tokenizer's tokens
    (without stemming), so English numbers do not move."""

    def tokenize(self, text: str) -> list[str]:
        return list(_UNICODE_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


def loses_text(text: str) -> bool:
    """True if the default rouge_score tokenizer (lowercased ``[a-z0-9]`` runs) drops letters of ``text``."""
    return _NON_ASCII_WORD.search(text) is not None


def _rouge_scorer(backend: str, use_stemmer: bool, tokenizer: str = "default") -> Any:
    custom = UnicodeTokenizer() if tokenizer == "unicode" else None
    if backend == "rouge-score-rs":
        from rouge_score_rs import RougeScorer

        return RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer, tokenizer=custom)
    from rouge_score.rouge_scorer import RougeScorer as PythonRougeScorer

    return PythonRougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer, tokenizer=custom)


def rouge_f1(items: Sequence[Pair], use_stemmer: bool, backend: str, tokenizer: str = "default") -> dict[str, list[float]]:
    """Per-example F1 for all four ROUGE types in one pass, cached for the last batch.

    The four rouge metrics of a case score the same batch one after another; tokenising and matching once
    serves all four.
    """
    key = (backend, use_stemmer, tokenizer, tuple(hyp for hyp, _ in items), tuple(tuple(refs) for _, refs in items))
    if key in _rouge_cache:
        return _rouge_cache[key]
    scorer = _rouge_scorer(backend, use_stemmer, tokenizer)
    single = [i for i, (_, refs) in enumerate(items) if len(refs) == 1]
    results: list[Any] = [None] * len(items)
    if hasattr(scorer, "score_batch"):
        batch = scorer.score_batch([items[i][1][0] for i in single], [items[i][0] for i in single])
    else:
        batch = [scorer.score(items[i][1][0], items[i][0]) for i in single]
    for i, result in zip(single, batch):
        results[i] = result
    for i, (hyp, refs) in enumerate(items):
        if results[i] is None:
            results[i] = scorer.score_multi(refs, hyp)  # best F1 per type over the references
    table = {rouge_type: [float(r[rouge_type].fmeasure) for r in results] for rouge_type in ROUGE_TYPES}
    _rouge_cache.clear()
    _rouge_cache[key] = table
    return table


@metric("rouge1", rouge_type="rouge1", detail="unigram overlap")
@metric("rouge2", rouge_type="rouge2", detail="bigram overlap")
@metric("rougeL", rouge_type="rougeL", detail="longest common subsequence over the whole text")
@metric("rougeLsum", rouge_type="rougeLsum", detail="union LCS over sentences split on newlines")
class Rouge(Metric):
    kind = "mean"
    needs_expected = True
    value_range = (0.0, 1.0)
    defaults = {"use_stemmer": False, "tokenizer": "default"}
    choices = {"tokenizer": ROUGE_TOKENIZERS}
    rouge_type = ""
    detail = ""

    def __init__(self, params: dict[str, Any]) -> None:
        self.backend = rouge_backend()
        if params.get("tokenizer") == "unicode" and params.get("use_stemmer"):
            raise MetricParamError(f"{self.name}: use_stemmer (the English Porter stemmer) works with the default "
                                   "tokenizer only; drop use_stemmer or tokenizer: unicode")
        super().__init__(params)

    def describe(self) -> str:
        stemming = "Porter stemming" if self.params["use_stemmer"] else "no stemming (use_stemmer: false)"
        computed_by = f"{self.backend} {importlib.metadata.version(self.backend)}"
        if self.backend != "rouge-score":
            computed_by += " (a port of rouge_score with identical scores)"
        if self.params["tokenizer"] == "unicode":
            tokens = ("tokenizer: unicode, NFKC-normalized and casefolded, every Han/Hiragana/Katakana character a "
                      "token, else runs of letters, marks and digits of any script (ASCII text: the default's tokens)")
        else:
            tokens = ("default tokenizer: lowercased, only [a-z0-9] kept, so non-ASCII text is dropped (a warning "
                      "says how many examples lost text; tokenizer: unicode keeps it)")
        return (
            f"mean over examples of {self.rouge_type} F1 as rouge_score.RougeScorer defines it ({self.detail}; "
            f"{tokens}; {stemming}); several "
            "references: the best F1 (score_multi). Equals HF evaluate rouge with use_aggregator=False, averaged; "
            "evaluate's default use_aggregator=True reports a bootstrap median instead, which differs slightly. "
            f"Computed by {computed_by}"
        )

    def score(self, scored: Sequence[Scored]) -> list[Any]:
        items = pairs(scored, self.name)
        if not items:
            return []
        tokenizer = self.params["tokenizer"]
        if tokenizer == "default":
            self._warn_lost_text(items)
        return rouge_f1(items, self.params["use_stemmer"], self.backend, tokenizer)[self.rouge_type]

    def _warn_lost_text(self, items: Sequence[Pair]) -> None:
        """ROUGE of Chinese or Russian text under the default tokenizer is 0 whatever the answer: say so."""
        lost = sum(1 for hyp, refs in items if loses_text(hyp) or any(loses_text(r) for r in refs))
        if lost:
            warnings.warn(
                f"{self.name}: the default rouge_score tokenizer keeps only [a-z0-9], so {lost} of {len(items)} "
                "examples lost non-ASCII text (scored on what was left: 0 when nothing was). "
                f"Set `{self.name}: {{tokenizer: unicode}}` to score text in any script",
                EvalsuiteWarning, stacklevel=2,
            )

