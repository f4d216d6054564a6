"""The one secret rule, as cassettes and report files apply it."""

from __future__ import annotations

import html
import json

from evalsuite._util.secrets import REDACTED, Scrubber, env_secrets, placeholder, scrub

ENV = {"DB_PASSWORD": "AAAAAAAAAAAA", "OPENAI_API_KEY": 'sk-"x"<y>&-123456', "my_token": "tok-0123456789",
       "SHORT_KEY": "1234567", "PATH": "/usr/bin:/bin", "MONKEY": "bananas-and-more"}


def test_secret_names_and_lengths() -> None:
    found = env_secrets(ENV)
    assert set(found.values()) == {"DB_PASSWORD", "OPENAI_API_KEY", "my_token", "MONKEY"}  # KEY in MONKEY counts
    assert "1234567" not in found  # under 8 characters: would scrub ordinary text


def test_one_placeholder_scheme() -> None:
    assert placeholder() == REDACTED == "[REDACTED]"
    assert placeholder("DB_PASSWORD") == "[REDACTED:DB_PASSWORD]"
    assert scrub("x AAAAAAAAAAAA y", {"DB_PASSWORD": "AAAAAAAAAAAA", "PATH": "x y"}) == "x [REDACTED:DB_PASSWORD] y"


def test_json_and_html_escaped_forms_are_scrubbed_too() -> None:
    secret = ENV["OPENAI_API_KEY"]
    text = " | ".join([secret, json.dumps(secret), json.dumps(secret, ensure_ascii=True), html.escape(secret)])
    scrubbed = scrub(text, ENV)
    assert "123456" not in scrubbed
    assert scrubbed.count("[REDACTED:OPENAI_API_KEY]") == 4


def test_a_value_held_by_two_variables_is_named_once_and_bytes_are_scrubbed() -> None:
    scrubber = Scrubber({"B_TOKEN": "same-value-99", "A_SECRET": "same-value-99"})
    assert scrubber.text("=same-value-99=") == "=[REDACTED:A_SECRET]="
    assert scrubber.data(b"=same-value-99=") == b"=[REDACTED:A_SECRET]="
    assert not Scrubber({"PATH": "/usr/bin"})
