"""The spend guard (``--eval-max-cost``): no live call is sent once its estimated cost would pass the limit.

Before a call is sent its cost is estimated from the prompt (characters / 4) and the completion cap
(``max_tokens``; nothing when unset), at the model's prices, scaled up by how much the usage reported so far
exceeded its estimates (a chat prompt's wrapping costs tokens the characters do not show); the estimate is held
while the call is in flight and replaced by the cost of the usage the answer reports (the estimate again when it
reports none; nothing for a call that failed). A call whose estimate would take the committed total (spent plus held) past the limit is
not sent, and neither is any call after it: the guard stays reached, so an item is never half-run by a cheaper
call slipping under the limit later. Calls not sent are answered ``not_run``: they are reported as not run,
never as wrong. Replayed answers cost nothing and never reach the guard.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from evalsuite.model._wire import estimated_usage
from evalsuite.records import Answer, Call

Price = tuple[float, float]  # USD per 1k (input, output) tokens


class Hold(NamedTuple):
    """What a call in flight holds of the limit: its raw ``estimate`` and the ``amount`` held (scaled)."""

    estimate: float
    amount: float


def usd(amount: float) -> str:
    """``$0.0123``, ``$1.5``: four significant digits, enough to tell a limit from the spend that reached it."""
    return f"${amount:.4g}"


class SpendGuard:
    """The committed cost of one process's live calls against its limit (USD); thread-safe."""

    def __init__(self, limit: float, *, note: str = "") -> None:
        self.limit = limit
        self.note = note  # how the limit was derived, e.g. an xdist worker's share
        self.spent = 0.0  # settled calls: their reported usage at the model's prices
        self.held = 0.0  # calls in flight: their scaled estimates
        self.reached_at: float | None = None  # the committed total when a call was first refused
        self._estimated = self._reported = 0.0  # settled calls that reported usage: estimates against costs
        self._lock = threading.Lock()

    def reserve(self, call: Call, price: Price) -> Hold | None:
        """What is now held for ``call``; None: do not send it (the limit is reached)."""
        prompt, completion = estimated_usage(call)
        estimate = (prompt * price[0] + completion * price[1]) / 1000
        with self._lock:
            if self.reached_at is not None:
                return None
            scale = max(1.0, self._reported / self._estimated) if self._estimated else 1.0
            hold = Hold(estimate, estimate * scale)
            committed = self.spent + self.held
            if committed + hold.amount > self.limit:
                self.reached_at = committed
                return None
            self.held += hold.amount
            return hold

    def settle(self, hold: Hold, answer: Answer | None, price: Price) -> None:
        """The call ended (``answer`` None: cancelled): what it held becomes what it cost."""
        reported = answer is not None and answer.ok and (answer.prompt_tokens, answer.completion_tokens) != (None, None)
        if answer is None or not answer.ok:
            cost = 0.0
        elif not reported:
            cost = hold.amount  # a server that reports no usage: the estimate is all we know
        else:
            cost = ((answer.prompt_tokens or 0) * price[0] + (answer.completion_tokens or 0) * price[1]) / 1000
        with self._lock:
            self.held -= hold.amount
            self.spent += cost
            if reported:
                self._estimated += hold.estimate
                self._reported += cost

    def describe(self) -> str:
        """``limit $5 reached at ~$4.98``: the limit and the committed total when the first call was refused."""
        return f"limit {usd(self.limit)}{self.note} reached at ~{usd(self.reached_at or 0.0)}"
