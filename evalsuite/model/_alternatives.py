"""Each generated token and its most likely alternatives, from a completion's ``logprobs``.

Why: a judge's logprob-weighted score needs the probabilities of every scale value at the verdict token, not
only the one sampled. Chat puts them under ``logprobs.content[i].top_logprobs`` (a list of ``{token,
logprob}``), legacy completions under ``logprobs.tokens`` and ``logprobs.top_logprobs`` (a ``{token: logprob}``
per position). The sampled token is always among its own alternatives. Shapes a server gets wrong give None
(no alternatives), never an exception: the judge then falls back to the verdict it parsed.
"""

from __future__ import annotations

from typing import Any

Alternatives = tuple[list[str], list[dict[str, float]]]


def token_alternatives(api: str, body: dict[str, Any], logprobs: Any) -> Alternatives | None:
    """(tokens, alternatives per token) of a choice's ``logprobs``; None when it has no per-token alternatives, or
    when the request asked for none beyond the sampled token (``body``: a chat ``top_logprobs`` or completions
    ``logprobs`` above 1): a 25,000-example perplexity run then keeps no token strings in memory."""
    asked = body.get("top_logprobs") if api == "chat" else body.get("logprobs")
    if not isinstance(logprobs, dict) or not (isinstance(asked, int) and not isinstance(asked, bool) and asked > 1):
        return None
    if api == "chat":
        content = logprobs.get("content")
        if not isinstance(content, list) or not all(isinstance(item, dict) for item in content):
            return None
        tokens: Any = [item.get("token") for item in content]
        tops = [_pairs(item.get("top_logprobs"), item.get("token"), item.get("logprob")) for item in content]
    else:
        tokens, given, chosen = logprobs.get("tokens"), logprobs.get("top_logprobs"), logprobs.get("token_logprobs")
        if not (isinstance(tokens, list) and isinstance(given, list) and len(given) == len(tokens)):
            return None
        chosen = chosen if isinstance(chosen, list) and len(chosen) == len(tokens) else [None] * len(tokens)
        tops = [_mapping(top, token, logprob) for top, token, logprob in zip(given, tokens, chosen)]
    if not all(isinstance(token, str) for token in tokens) or any(top is None for top in tops):
        return None
    return tokens, tops  # type: ignore[return-value]  # checked just above


def _pairs(top: Any, token: Any, logprob: Any) -> dict[str, float] | None:
    if not isinstance(top, list):
        return None
    pairs = [(item.get("token"), item.get("logprob")) for item in top if isinstance(item, dict)]
    return _mapping(dict(pairs), token, logprob)


def _mapping(top: Any, token: Any, logprob: Any) -> dict[str, float] | None:
    if top is None:
        top = {}
    if not isinstance(top, dict):
        return None
    alternatives = {k: float(v) for k, v in top.items() if isinstance(k, str) and _number(v)}
    if isinstance(token, str) and _number(logprob):
        alternatives.setdefault(token, float(logprob))
    return alternatives


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
