"""The one secret rule, as cassettes and report files apply it."""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote, quote_plus

import pytest

from evalsuite._util.secrets import REDACTED, Scrubber, env_secrets, placeholder, scrub, user_secrets
from evalsuite.errors import SettingsError

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


def test_organization_and_project_ids_are_secrets_by_name() -> None:
    found = env_secrets({"OPENAI_ORG_ID": "org-0123456789", "OPENAI_PROJECT_ID": "proj_0123456789",
                         "AZURE_CLIENT_CREDENTIAL": "cred-0123456789", "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1"})
    assert set(found.values()) == {"OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZURE_CLIENT_CREDENTIAL"}


def test_every_encoding_a_report_can_hold_is_scrubbed() -> None:
    """Reports written on later replays: escaped every way a writer may escape, or encoded (Basic auth)."""
    secret = 'pw/"q\\<&>-8a7d6c'
    env = {"DB_PASSWORD": secret}
    every_char = "".join(f"\\u{ord(c):04x}" for c in secret)
    basic = base64.b64encode(f"user:{secret}".encode()).decode()
    forms = [json.dumps(secret).replace("/", "\\/"), every_char, every_char.upper().replace("\\U", "\\u"),
             html.escape(secret, quote=False).replace('"', "&#34;"), quote(secret, safe=""), quote_plus(secret),
             f"Authorization: Basic {basic}", base64.urlsafe_b64encode(f"x{secret}yz".encode()).decode()]
    for form in forms:
        scrubbed = scrub(f"<{form}>", env)
        assert "8a7d6c" not in scrubbed and "[REDACTED:DB_PASSWORD]" in scrubbed, form
        assert form not in scrubbed


def test_the_user_list_holds_literal_values_and_patterns() -> None:
    scrubber = Scrubber({}, redact=["acct-secret", "re:cust-[0-9]{4}", "  "])
    assert scrubber.text("acct-secret cust-1234 cust-12") == "[REDACTED:eval_redact] [REDACTED:eval_redact] cust-12"
    assert scrubber.text(json.dumps("acct-secret\u00e9")) == '"[REDACTED:eval_redact]\\u00e9"'  # every form, any length
    with pytest.raises(SettingsError, match=r"eval_redact line 're:\(unclosed'.*not a valid regular expression"):
        Scrubber({}, redact=["re:(unclosed"])
    with pytest.raises(SettingsError, match="matches the empty string"):
        user_secrets(["re:x*"])


def test_learned_values_and_decoded_structures() -> None:
    scrubber = Scrubber({})
    assert not scrubber
    scrubber.learn("short", "api-key")  # under 8 characters: never a secret
    scrubber.learn("org-canary-4411", "openai-organization")
    body = {"error": {"message": "org-canary-4411 has no access", "details": ["org-canary-4411", 3, None]}}
    assert scrubber.structure(body) == {"error": {"message": "[REDACTED:openai-organization] has no access",
                                                  "details": ["[REDACTED:openai-organization]", 3, None]}}
    assert scrubber.text("short") == "short"
