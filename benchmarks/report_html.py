"""What report.html costs: writing it, its size, and how fast it opens, at 24,999 IMDB examples and at 100 small items.

A 24,999-example item is scored by the real pipeline (dataset -> prompts -> parse -> metrics -> verdict) on
answers made here (no model: the first run 93% right, the second 88%, so the second regresses against the first
as its baseline and has flipped examples). The few-shot prompt is not truncated, so each example's differing
part is the whole review, cut to 1,000 characters: about the largest a real prompt makes. Prints:

- the time to write all three reports (json, md, html) and report.html alone (render, scrub, write), and the
  file sizes;
- the same for 100 items of 24 examples each (the budget: a few hundred ms for all the reports);
- with Playwright and Chromium (``/usr/bin/chromium``): the time until the page's script has run and the failing
  item's example browser shows its first page, the time a search over every example takes, and the JS heap.

Figures on a 2-core machine shared with other jobs are noisy: compare ratios within one run (``uptime`` is printed).

    python benchmarks/report_html.py [--data ../shared/data/imdb-test.jsonl] [--limit N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb-test.jsonl"
CHROMIUM = "/usr/bin/chromium"

CASE = """
cases:
  - id: {id}
    model: {{name: gemma-3-270m, api: completions, temperature: 0, max_tokens: 4}}
    dataset: {{path: {path}, id: id, expected: label, label_names: [negative, positive]{limit}}}
    prompt:
      user: |-
        Classify each movie review as positive or negative.

        Review: I loved every minute, the acting is superb.
        Sentiment: positive

        Review: Boring and far too long, a total waste of time.
        Sentiment: negative

        Review: {{{{ text }}}}
        Sentiment:
    parse: {{kind: label, labels: {{positive: [positive, pos], negative: [negative, neg]}}}}
    metrics:
      accuracy: {{min: 0.9}}
      f1: {{average: macro, min: 0.85}}
"""


def scored_items(root: Path, data: Path, case_id: str, limit: int | None, right: float, seed: int,
                 baseline_path: Path | None = None) -> list:
    """One item per call: ``right`` of the answers correct (deterministic per seed)."""
    from evalsuite import dataset, prompts, runner
    from evalsuite.cases import load_suite
    from evalsuite.metrics import get_metric
    from evalsuite.records import Answer
    from evalsuite.verdict import load_baseline

    path = root / "cases" / f"{case_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CASE.format(id=case_id, path=data, limit=f", limit: {limit}" if limit else ""))
    [run] = load_suite(path, root)
    examples = dataset.load_examples(run.case.dataset, run.base_dir)
    calls = prompts.build_calls(run.case, examples)
    rng = random.Random(seed)
    expected = {e.id: e.expected for e in examples}
    answers = []
    for call in calls:
        truth = expected[call.example_id]
        other = "negative" if truth == "positive" else "positive"
        answers.append(Answer(call.example_id, call.sample, text=" " + (truth if rng.random() < right else other),
                              prompt_tokens=180, completion_tokens=2, latency_s=0.05))
    metrics = {name: get_metric(name, spec) for name, spec in run.case.metrics.items()}
    settings = runner.RunSettings(rootdir=root, baseline=load_baseline(baseline_path) if baseline_path else None)
    return [runner.score(run, examples, answers, metrics, settings, prompt_hashes=[c.prompt_hash for c in calls],
                         inputs=[runner.prompt_text(c) for c in calls],
                         prompts=[runner.rendered_prompt(c) for c in calls])]


def timed_write(out: Path, items: list) -> tuple[float, float]:
    """(seconds to write all reports, seconds to write report.html alone: render, scrub, atomic write). A secret
    is set in the environment so that the scrub does its real work."""
    from evalsuite._util.atomic import write_atomic
    from evalsuite._util.secrets import Scrubber
    from evalsuite.report import write_reports
    from evalsuite.report._common import clipped, run_metadata
    from evalsuite.report.html import render_html

    os.environ.setdefault("EVALSUITE_BENCH_TOKEN", "sk-bench-0123456789abcdef")
    started = time.perf_counter()
    write_reports(out, items, {})
    total = time.perf_counter() - started
    started = time.perf_counter()
    cut = [clipped(item) for item in items]
    write_atomic(out / "report-again.html", Scrubber().text(render_html(cut, run_metadata(cut, {}))))
    return total, time.perf_counter() - started


def browser_figures(page_path: Path) -> dict[str, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser: skipped (pip install playwright)")
        return None
    if not Path(CHROMIUM).exists():
        print(f"browser: skipped ({CHROMIUM} is absent; apt-get install chromium)")
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_selector("details.examples[open] table.rows tbody tr")
        wall = time.perf_counter() - started
        in_page = page.evaluate("performance.now()")
        search = page.locator("details.examples[open] input[type=search]").first
        started = time.perf_counter()
        search.fill("masterpiece")
        page.wait_for_function("document.querySelector('details.examples[open] .controls .muted')"
                               ".textContent.includes(' of ')")
        searched = time.perf_counter() - started
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        browser.close()
    return {"open_s": wall, "in_page_s": in_page / 1000, "search_s": searched, "heap_mb": heap / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="examples of the large item (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="write the reports here and keep them")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} is absent (the IMDB test split as JSONL: id, text, label)")
        return 0
    print("machine load:", os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="evalsuite-report-bench-"))
    try:
        from evalsuite.verdict import write_baseline

        started = time.perf_counter()
        before = scored_items(work, args.data, "imdb", args.limit, 0.93, seed=1)
        baseline = write_baseline(work / "baseline.json", before)
        items = scored_items(work, args.data, "imdb", args.limit, 0.88, seed=2, baseline_path=baseline)
        print(f"scored {items[0].n_examples:,} examples twice in {time.perf_counter() - started:.1f} s; "
              f"verdict: {[m.verdict for m in items[0].metrics]}, {len(items[0].flipped)} flips listed")
        out = args.keep or work / "large"
        total, html_s = timed_write(out, items)
        html = out / "report.html"
        n = items[0].n_examples
        print(f"large item: all reports written in {total:.2f} s (report.html alone: {html_s:.2f} s); "
              f"report.html {html.stat().st_size / 1e6:.1f} MB ({html.stat().st_size / n:,.0f} bytes per example), "
              f"report.json {(out / 'report.json').stat().st_size / 1e6:.1f} MB")
        figures = browser_figures(html)
        if figures:
            print(f"large item in Chromium: script run and first page of examples shown {figures['open_s']:.2f} s "
                  f"after navigation ({figures['in_page_s']:.2f} s by the page's clock); a search over all "
                  f"{n:,} examples {figures['search_s']:.2f} s; JS heap {figures['heap_mb']:.0f} MB")

        small: list = []
        for i in range(100):
            small += scored_items(work / "small", args.data, f"small{i}", 24, 0.9, seed=i)
        total, html_s = timed_write(work / "small-reports", small)
        size = (work / "small-reports" / "report.html").stat().st_size
        print(f"100 items x 24 examples: all reports written in {total * 1000:.0f} ms (report.html alone: "
              f"{html_s * 1000:.0f} ms, {size / 1e6:.2f} MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
