"""Measuring a value's text before ``str()`` runs: accurate enough for small values, quick for huge ones."""

from __future__ import annotations

from evalsuite._util.bounded_jinja import text_size


def test_text_size_is_near_the_real_length_of_small_values() -> None:
    for value in ["abc", [1, "ab", None], {"k": (1, 2.5)}, {1, 2}, [[], [True]], 10**40]:
        assert len(str(value)) <= text_size(value) <= 2 * len(str(value)) + 30, value


def test_text_size_stops_once_past_the_limit_on_shared_references() -> None:
    """str() of this would be 10^12 characters; measuring it walks the inner list once."""
    inner = [1] * 999_999
    assert 10_000_000 < text_size([inner] * 999_999) < 20_000_000


def test_text_size_of_a_list_containing_itself_ends() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert text_size(loop) < 20
