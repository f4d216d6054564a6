"""Time corpus metrics over 24,999 IMDB reviews: the libraries called directly vs evalsuite's Metric API.

Pairs (deterministic): reference = the review's first ``--words`` words (default 64; 0 = the whole review),
hypothesis = the first 80% of those words with every 5th word dropped and every 7th pair of neighbours
swapped (so it is neither a prefix nor a subsequence of the reference).
Baseline: ``sacrebleu.corpus_bleu`` + ``rouge_score.RougeScorer`` (rouge1, rouge2, rougeL, rougeLsum, one
pass, mean F1). evalsuite: the ``sacrebleu`` and four rouge metrics through ``get_metric().score`` and
``aggregate``. Prints both times, the ratio, and the largest absolute difference of the values.
ROUGE is computed by rouge-score-rs when the ``fast`` extra is installed; ``EVALSUITE_ROUGE_BACKEND=rouge-score``
forces the pure-Python rouge-score, so running it both ways measures the extra (the line "ROUGE computed by" says
which ran).
Also times the macro-F1 bootstrap at 25,000 synthetic labels (2,000 resamples through the batched
confusion-count path; it took about 1-2 s on a 2-core machine), which needs no data file.

    python benchmarks/metrics_speed.py [--data ../shared/data/imdb-test.jsonl] [--limit N] [--words N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb-test.jsonl"
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def load_pairs(path: Path, limit: int | None, n_words: int) -> list[tuple[str, str]]:
    pairs = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            words = json.loads(line)["text"].split()[: n_words or None]
            kept = words[: max(1, int(len(words) * 0.8))]
            for i in range(0, len(kept) - 1, 7):
                kept[i], kept[i + 1] = kept[i + 1], kept[i]
            pairs.append((" ".join(w for i, w in enumerate(kept) if i % 5 != 3), " ".join(words)))
            if limit and len(pairs) >= limit:
                break
    return pairs


def baseline(pairs: list[tuple[str, str]]) -> dict[str, float]:
    import sacrebleu
    from rouge_score.rouge_scorer import RougeScorer

    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    values = {"sacrebleu": sacrebleu.corpus_bleu(hyps, [refs]).score}  # one reference stream
    scorer = RougeScorer(ROUGE_TYPES, use_stemmer=False)
    sums = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, ref in pairs:
        scores = scorer.score(ref, hyp)
        for rouge_type in ROUGE_TYPES:
            sums[rouge_type] += scores[rouge_type].fmeasure
    values.update({t: s / len(pairs) for t, s in sums.items()})
    return values


def evalsuite_values(pairs: list[tuple[str, str]]) -> dict[str, float]:
    from evalsuite.cases.schema import MetricSpec
    from evalsuite.metrics import get_metric
    from evalsuite.records import Answer, Example, Scored

    scored = [
        Scored(example=Example(id=str(i), fields={}, expected=ref), answer=Answer(str(i), 0, text=hyp),
               prompt_hash="", prediction=hyp, parsed=True)
        for i, (hyp, ref) in enumerate(pairs)
    ]
    values = {}
    for name in ["sacrebleu", *ROUGE_TYPES]:
        metric = get_metric(name, MetricSpec())
        values[name] = metric.aggregate(metric.score(scored))
    return values


def f1_bootstrap_seconds(n: int = 25_000, resamples: int = 2000) -> float:
    """Seconds for the 95% bootstrap interval of macro F1 over ``n`` labels, 80% right, 2% unparsed."""
    import numpy as np

    from evalsuite.cases.schema import MetricSpec
    from evalsuite.metrics import get_metric
    from evalsuite.records import Answer, Example, Scored
    from evalsuite.verdict.stats import Resampling, bootstrap_ci

    rng = np.random.default_rng(0)
    labels = np.array(["pos", "neg", "neu"])
    truth = labels[rng.integers(0, 3, n)]
    guess = np.where(rng.random(n) < 0.8, truth, labels[rng.integers(0, 3, n)])
    scored = [
        Scored(example=Example(id=str(i), fields={}, expected=t), answer=Answer(str(i), 0, text=p), prompt_hash="",
               prediction=p if i % 50 else None, parsed=i % 50 != 0)
        for i, (p, t) in enumerate(zip(guess.tolist(), truth.tolist()))
    ]
    metric = get_metric("f1", MetricSpec())
    values = metric.score(scored)
    start = time.perf_counter()
    low, high = bootstrap_ci(values, metric.aggregate, Resampling(n_resamples=resamples, batched=metric.aggregate_resamples))
    elapsed = time.perf_counter() - start
    assert low < metric.aggregate(values) < high
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--words", type=int, default=64, help="words kept per review; 0 keeps whole reviews")
    args = parser.parse_args()
    print(f"f1 bootstrap, 25,000 examples, 2,000 resamples: {f1_bootstrap_seconds():.2f} s")
    if not args.data.exists():
        print(f"skipped: {args.data} not found (the benchmark reads the IMDB test split at run time)")
        return 0
    from evalsuite.metrics import _parallel
    from evalsuite.metrics._text import rouge_backend

    pairs = load_pairs(args.data, args.limit, args.words)
    print(f"{len(pairs)} pairs from {args.data}; ROUGE computed by {rouge_backend()} in evalsuite")

    start = time.perf_counter()
    ours = evalsuite_values(pairs)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = baseline(pairs)
    base_s = time.perf_counter() - start

    print(f"{'metric':<10} {'libraries':>20} {'evalsuite':>20} {'abs diff':>10}")
    for name, value in reference.items():
        print(f"{name:<10} {value:>20.12f} {ours[name]:>20.12f} {abs(value - ours[name]):>10.2e}")
    max_diff = max(abs(reference[n] - ours[n]) for n in reference)
    print(f"libraries directly: {base_s:.1f} s; evalsuite: {ours_s:.1f} s; ratio {base_s / ours_s:.1f}x; max abs diff {max_diff:.2e}")
    print(f"{_parallel.cpus()} cores; load average over the last minute at the end: {os.getloadavg()[0]:.1f}")
    return 0 if max_diff <= 1e-9 and not any(math.isnan(v) for v in ours.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
