"""One scheduler per session: every selected item's calls planned ahead and answered on one engine.

pytest runs items one after another. An item that sent its own calls waited for its slowest one before the
next item began, so a suite of many small cases used a fraction of what the endpoint allows (100 cases of 10
examples took 5.4x a bare SDK loop over the same calls). The scheduler takes the items in pytest's order as
soon as they are known, plans each one (:func:`~evalsuite.runner.plan_item`: examples, prompts, calls), opens
its cassette, answers what the cassette holds from its index, and submits the rest to one
:class:`~evalsuite.model.Engine`, where each endpoint has one admission budget (concurrency with AIMD on 429,
Retry-After, rpm/tpm, the circuit breaker) shared by every item and served in pytest's order. pytest still
runs each item as before: it waits for that item's answers (drawing its progress line), scores them and
reports, so outcomes, messages and report files are what the same answers gave without a scheduler.

Threads. The caller's thread (pytest's) adds items, waits for one, scores it and draws its progress, so only
that thread writes to pytest's terminal. A planning thread does the blocking work in order: planning items (at
most ``LOOKAHEAD_CALLS`` calls ahead of the item waited for), loading cassettes, replaying, and saving each
cassette as soon as its item's answers are in (its journal holds every recorded answer before that). An
engine thread runs the event loop; the first live call starts it, so a replay starts none.

Stopping. :meth:`Scheduler.stop` (``-x``, ``--maxfail``, ``--sw``) plans only the items still waited for and
answers every call not yet sent "interrupted"; :meth:`Scheduler.hold` lets no new request start until
:meth:`Scheduler.release` (pytest runs another test, which may patch the HTTP stack with a vcrpy cassette of its
own); :meth:`Scheduler.close` (the session's end, Ctrl-C) cancels what is still in flight, a Spark job included. Each cassette keeps
everything recorded: one cut short merges its journal, as the next run would.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalsuite.cases import CaseRun
from evalsuite.cases.schema import ModelSettings
from evalsuite.cassettes import CassetteHandle, CassetteOptions, open_cassette
from evalsuite.errors import EvalsuiteError
from evalsuite.model import Engine, Job, SpendGuard, finish_cassette, price_per_1k, recorded_answers
from evalsuite.model._progress import Progress, current_sink
from evalsuite.runner import ItemAnswers, ItemPlan, RunSettings, plan_item
from evalsuite.records import Answer

LOOKAHEAD_CALLS = 50_000  # calls planned beyond the item waited for: enough work for any budget, bounded memory
REFRESH_S = 0.1  # how often a waiting thread looks at the progress it draws


def price_missing(model: ModelSettings) -> str:
    """Why the spend guard cannot run: a model without a price, and where prices go."""
    return (f"--eval-max-cost: the spend guard cannot estimate what calls to model {model.name!r} cost: it has no "
            f"price. Add one to pyproject.toml ([tool.evalsuite.prices] \"{model.name}\" = {{input = ..., output = ...}}, "
            "USD per 1k tokens) or to the case (model.price_per_1k_input / price_per_1k_output), or drop --eval-max-cost")


@dataclass(eq=False)
class Ticket:
    """One item's place in the scheduler; ``done`` once its answers are in and its cassette saved, or it failed."""

    run: CaseRun
    settings: RunSettings
    options: CassetteOptions | None = None
    done: threading.Event = field(default_factory=threading.Event)
    answered: ItemAnswers | None = None
    error: BaseException | None = None
    progress: Progress | None = None  # live calls only: replay shows none
    wanted: bool = False  # someone waits for it: planned first, even past the lookahead or after stop()
    calls: int = 0  # planned calls, counted against the lookahead until the ticket is consumed
    plan: ItemPlan | None = None
    answers: list[Answer | None] = field(default_factory=list)
    cassette: CassetteHandle | None = None
    failure: BaseException | None = None  # what ended its answering early (a callback raised, a Spark job failed)
    finishing: bool = False  # queued to be saved: once


class Scheduler:
    """Plans, answers and records items in the order they are added; use as a context manager or :meth:`close` it.

    ``spend_share``: the part of ``settings.max_cost`` this process may spend (an xdist worker's share),
    described by ``spend_note`` in the spend guard's message.
    """

    def __init__(self, settings: RunSettings, *, spend_share: float = 1.0, spend_note: str = "") -> None:
        self.settings = settings
        live = settings.record_mode != "none"
        self.guard = (SpendGuard(settings.max_cost * spend_share, note=spend_note)
                      if settings.max_cost is not None and live else None)
        self._cond = threading.Condition()
        self._to_plan: deque[Ticket] = deque()
        self._to_finish: deque[Ticket] = deque()
        self._planned: deque[Ticket] = deque()  # planned, not yet consumed: what the lookahead counts
        self._outstanding = 0
        self._busy = False  # the planning thread is inside a task
        self._stopped = False
        self._closing = False
        self._closed = False
        self._held = False
        self._planner: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Engine | None = None
        self._engine_thread: threading.Thread | None = None
        self._spark_jobs: dict[str, threading.Thread] = {}  # engine: spark items sending, by Spark job group

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the caller's side ------------------------------------------------------------------------

    def add(self, run: CaseRun, settings: RunSettings, options: CassetteOptions | None = None) -> Ticket:
        """Plan and answer ``run`` after every item added before it."""
        ticket = Ticket(run, settings, options)
        with self._cond:
            if self._closing:
                raise RuntimeError("the scheduler is closed")
            self._to_plan.append(ticket)
            if self._planner is None:
                self._planner = threading.Thread(target=self._planning, name="evalsuite-planner", daemon=True)
                self._planner.start()
            self._cond.notify_all()
        return ticket

    def wait(self, ticket: Ticket) -> ItemAnswers:
        """The ticket's answers, once its cassette is saved; raises what planning or answering it raised.

        Draws the item's live progress on the current sink (pytest's terminal, stderr in a script) meanwhile.
        """
        with self._cond:
            ticket.wanted = True
            self._cond.notify_all()
        sink = current_sink()
        while not ticket.done.wait(REFRESH_S):
            if sink is not None and ticket.progress is not None:
                ticket.progress.show(sink)
        if sink is not None and ticket.progress is not None:
            ticket.progress.close(sink)
        self._consumed(ticket)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.answered is not None  # done without an error: answered
        return ticket.answered

    def _consumed(self, ticket: Ticket) -> None:
        """``ticket`` and every ticket planned before it are behind the caller: they no longer count as ahead."""
        with self._cond:
            if ticket in self._planned:
                while self._planned:
                    passed = self._planned.popleft()
                    self._outstanding -= passed.calls
                    if passed is ticket:
                        break
            self._cond.notify_all()
        ticket.plan, ticket.answers, ticket.cassette = None, [], None

    def stop(self) -> None:
        """Plan only what is still waited for; answer every call not yet sent "interrupted" (``-x``)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            engine, loop = self._engine, self._loop
        if engine is not None and loop is not None:
            loop.call_soon_threadsafe(engine.stop)

    def hold(self) -> None:
        """No new request until :meth:`release`; returns once the requests in flight are answered."""
        with self._cond:
            if self._held:
                return
            self._held = True
            engine, loop = self._engine, self._loop
        if engine is not None and loop is not None:
            asyncio.run_coroutine_threadsafe(engine.hold(), loop).result()

    def release(self) -> None:
        with self._cond:
            held, self._held = self._held, False
            engine, loop = self._engine, self._loop
        if held and engine is not None and loop is not None:
            loop.call_soon_threadsafe(engine.release)

    def close(self) -> None:
        """Cancel what is left (its calls answered "interrupted"), save every cassette, end the threads."""
        with self._cond:
            if self._closed:
                return
            self._stopped = self._closing = True
            self._cond.notify_all()
            while self._busy:  # a planning in progress may still submit to the engine
                self._cond.wait()
        if self._loop is not None and self._engine is not None:
            asyncio.run_coroutine_threadsafe(self._engine.aclose(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._engine_thread is not None:
                self._engine_thread.join()
            self._loop.close()
        with self._cond:
            spark_jobs = dict(self._spark_jobs)
        if spark_jobs:
            from evalsuite.distributed import cancel_jobs

            for group, thread in spark_jobs.items():  # their tasks stop; what they recorded is saved
                while thread.is_alive():  # again until it ends: a job may start just after a cancel
                    cancel_jobs(group)
                    thread.join(1.0)
        with self._cond:
            self._closed = True
            for ticket in self._to_plan:  # never planned: whoever waits for one is told
                ticket.error = EvalsuiteError(f"{ticket.run.item_id}: not run: the session ended first")
                ticket.done.set()
            self._to_plan.clear()
            self._cond.notify_all()
        if self._planner is not None:
            self._planner.join()

    # -- the planning thread ----------------------------------------------------------------------

    def _planning(self) -> None:
        while True:
            with self._cond:
                task = self._next_task()
                while task is None:
                    if self._closed and not self._to_finish:
                        return
                    self._cond.wait()
                    task = self._next_task()
                self._busy = True
            try:
                kind, ticket = task
                (self._finish if kind == "finish" else self._plan)(ticket)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next_task(self) -> tuple[str, Ticket] | None:
        """Saving comes first (it frees memory and makes recordings final), then the item waited for, then the
        next in order while the lookahead allows."""
        if self._to_finish:
            return "finish", self._to_finish.popleft()
        if self._closing:
            return None
        wanted = next((t for t in self._to_plan if t.wanted), None)
        if wanted is not None:
            self._to_plan.remove(wanted)
            return "plan", wanted
        if self._to_plan and not self._stopped and self._outstanding < LOOKAHEAD_CALLS:
            return "plan", self._to_plan.popleft()
        return None

    def _plan(self, ticket: Ticket) -> None:
        try:
            plan = plan_item(ticket.run, ticket.settings, ticket.options)
            with self._cond:
                ticket.calls = len(plan.calls)
                self._outstanding += ticket.calls
                self._planned.append(ticket)
            cassette = open_cassette(plan.cassette, ticket.settings.record_mode, metadata=plan.metadata,
                                     options=plan.options)
            ticket.plan, ticket.cassette = plan, cassette
            ticket.answers, to_send = recorded_answers(plan.calls, cassette, plan.endpoint)
            if to_send and (ticket.settings.engine_kind or plan.run.case.engine.kind) == "spark":
                self._send_on_spark(ticket, plan, to_send)
            elif to_send:
                self._submit(ticket, plan, to_send)
            else:
                self._finish(ticket)
        except BaseException as exc:  # handed to whoever waits for the item, as pytest would have seen it
            ticket.error = exc
            ticket.done.set()

    def _submit(self, ticket: Ticket, plan: ItemPlan, to_send: Sequence[int]) -> None:
        model = plan.run.case.model
        price = price_per_1k(model.name, plan.prices)
        if self.guard is not None and price is None:
            raise EvalsuiteError(f"{plan.run.item_id}: {price_missing(model)}")
        cassette = ticket.cassette
        assert cassette is not None
        ticket.progress = Progress(plan.run.item_id, len(to_send), model=model.name, prices=plan.prices)
        calls = [plan.calls[i] for i in to_send]
        left = len(calls)

        def on_answer(index: int, answer: Answer) -> None:  # on the engine's thread, once per call
            nonlocal left
            ticket.answers[to_send[index]] = answer
            left -= 1
            if not left:
                self._queue_finish(ticket)

        def on_fail(exc: BaseException) -> None:  # the job's remaining calls will not be answered: the item fails
            ticket.failure = exc
            self._queue_finish(ticket)

        async def submit() -> None:
            engine = self._engine
            assert engine is not None
            engine.submit(Job(calls, engine.sender_for(model), on_answer=on_answer, on_fail=on_fail,
                              record=cassette.record, progress=ticket.progress, price=price))

        asyncio.run_coroutine_threadsafe(submit(), self._engine_loop()).result()

    def _send_on_spark(self, ticket: Ticket, plan: ItemPlan, to_send: Sequence[int]) -> None:
        """``engine: spark``: the item's calls go to Spark tasks, from a thread of its own (a Spark job may take
        minutes, while the other items are planned, answered and saved); its cassette keeps whatever the tasks
        recorded, even when the job fails."""
        from evalsuite.distributed import send_on_spark

        if self.guard is not None:
            raise EvalsuiteError(f"{plan.run.item_id}: --eval-max-cost cannot hold back calls once they are handed to "
                                 "Spark tasks: run this item with --eval-engine local, or drop --eval-max-cost")
        cassette, case = ticket.cassette, plan.run.case
        assert cassette is not None
        group = f"evalsuite-{id(ticket):x}"

        def send() -> None:
            try:
                sent = send_on_spark([plan.calls[i] for i in to_send], case.model, cassette, settings=self.settings.engine,
                                     spec=case.engine, base_dir=plan.run.base_dir, job_group=group)
                for index, answer in zip(to_send, sent):
                    ticket.answers[index] = answer
            except BaseException as exc:  # the item's error, once what the tasks recorded is saved
                ticket.failure = exc
            finally:
                self._queue_finish(ticket)
                with self._cond:
                    self._spark_jobs.pop(group, None)

        thread = threading.Thread(target=send, name=f"evalsuite-spark-{plan.run.item_id}", daemon=True)
        with self._cond:
            self._spark_jobs[group] = thread
        thread.start()

    def _engine_loop(self) -> asyncio.AbstractEventLoop:
        with self._cond:
            if self._loop is None:
                engine = Engine(self.settings.engine, guard=self.guard)
                if self._held:
                    engine.sending.clear()
                loop = asyncio.new_event_loop()
                self._engine_thread = threading.Thread(target=loop.run_forever, name="evalsuite-engine", daemon=True)
                self._engine_thread.start()
                self._engine, self._loop = engine, loop
            return self._loop

    def _queue_finish(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.finishing:
                return
            ticket.finishing = True
            self._to_finish.append(ticket)
            self._cond.notify_all()

    def _finish(self, ticket: Ticket) -> None:
        """All answers are in: keep what a transient failure must not erase, save the cassette, hand the answers over."""
        plan, cassette = ticket.plan, ticket.cassette
        assert plan is not None and cassette is not None
        if ticket.failure is not None:  # answered in part: keep what was recorded, hand the error over
            try:
                cassette.save_interrupted()
            finally:
                ticket.error, ticket.cassette = ticket.failure, None
                ticket.done.set()
            return
        try:
            answers: list[Answer] = [a for a in ticket.answers if a is not None]
            assert len(answers) == len(plan.calls), "every call of a finished item has its answer"
            misses = finish_cassette(cassette, plan.calls, answers, provider=plan.run.case.model.provider,
                                     endpoint=plan.endpoint)
            guard = self.guard if any(a.error_kind == "not_run" for a in answers) else None
            ticket.answered = ItemAnswers(plan, answers, cassette.n_interactions, misses, guard)
        except BaseException as exc:  # a full disk while saving: the item's error (its journal keeps the answers)
            ticket.error = exc
        finally:
            ticket.cassette = None
            ticket.done.set()
