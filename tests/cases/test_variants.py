"""Variants: prompt variants x parameter matrix, one item each, with stable ids; their errors at their line."""

from __future__ import annotations

from pathlib import Path

from tests._support.case_files import CASE, error, load


def test_prompt_variants_times_parameter_matrix(tmp_path: Path) -> None:
    runs = load(tmp_path, CASE + """\
    variants:
      prompts:
        plain: {}
        terse: {system: "Sentiment?", few_shot: [{role: user, content: meh}, {role: assistant, content: negative}]}
      matrix: {max_tokens: [20], temperature: [0, 0.7]}
""")
    assert [r.item_id for r in runs] == [
        "sentiment[plain-t0-mt20]", "sentiment[plain-t0.7-mt20]", "sentiment[terse-t0-mt20]", "sentiment[terse-t0.7-mt20]",
    ]
    by_id = {r.item_id: r for r in runs}
    terse = by_id["sentiment[terse-t0.7-mt20]"]
    assert terse.variant == "terse-t0.7-mt20"
    assert (terse.case.model.temperature, terse.case.model.max_tokens) == (0.7, 20)
    assert terse.case.prompt.system == "Sentiment?" and terse.case.prompt.user == "Review: {{ text }}"
    assert [m.content for m in terse.case.prompt.few_shot] == ["meh", "negative"]
    plain = by_id["sentiment[plain-t0-mt20]"].case
    assert plain.prompt.system == "Classify." and plain.prompt.few_shot == [] and plain.model.temperature == 0
    assert all(r.source == "cases/x.yaml:3" for r in runs)


def test_matrix_only_ids_use_fixed_abbreviations(tmp_path: Path) -> None:
    runs = load(tmp_path, CASE + "    variants: {matrix: {seed: [1, 12345678], top_p: [0.5]}}\n")
    assert [r.item_id for r in runs] == ["sentiment[p0.5-s1]", "sentiment[p0.5-s12345678]"]
    assert all("/" not in r.item_id and " " not in r.item_id for r in runs)


def test_matrix_errors(tmp_path: Path) -> None:
    assert error(tmp_path, CASE + "    variants: {matrix: {temprature: [0]}}\n") == (
        "cases/x.yaml:8: variants.matrix.temprature: unknown key 'temprature'; did you mean 'temperature'? "
        "valid keys: temperature, max_tokens, top_p, seed"
    )
    assert error(tmp_path, CASE + "    variants:\n      matrix:\n        max_tokens: [10, many]\n") == (
        "cases/x.yaml:10: variants.matrix.max_tokens[1]: input should be a valid integer, unable to parse string "
        "as an integer (got 'many')"
    )
    assert error(tmp_path, CASE + "    variants:\n      matrix:\n        temperature: [0, null]\n") == (
        "cases/x.yaml:10: variants.matrix.temperature[1]: null is not a value to sweep; give a number, or remove it"
    )
    assert error(tmp_path, CASE + "    variants: {prompts: {a b: {}}}\n").startswith(
        "cases/x.yaml:8: variants.prompts.a b: variant name 'a b' must use only letters"
    )


def test_a_case_needs_a_user_template(tmp_path: Path) -> None:
    assert error(tmp_path, CASE.replace('user: "Review: {{ text }}"', "user: null")) == (
        "cases/x.yaml:6: prompt: prompt.user is missing; add a user template (the chat user message, or the whole "
        "prompt for api: completions), or a prompt.conversation field"
    )
