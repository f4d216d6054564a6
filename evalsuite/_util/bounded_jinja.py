"""A Jinja2 sandbox that also bounds how much a template may produce.

Why: ``SandboxedEnvironment`` stops attribute escapes but not work: ``{{ 'x' * 3000000000 }}`` asks for
3 GB and the process dies. Every way a template can grow a value faster than its own length is checked
BEFORE the value is built (so a test of it needs no memory): ``*`` and ``+`` on text and lists, ``**``
and ``*`` on integers, widths in ``%`` / ``format`` / ``str.format``, ``~`` concatenation (a doubling
loop), ``join`` and ``replace`` results, padding (``center``, ``indent``, ``ljust``, ...), list growth
(``extend``, ``append``), ``range``; and the rendered output as it is generated. Each bound raises
:class:`TemplateLimit` naming the limit; :mod:`evalsuite.prompts` adds the case key. Large numbers as
values stay fine (``'%d' % 20000000``): only widths and counts are bounded.

Those bounds are per value; a render also has a BUDGET (:class:`_Budget`), because small values add up:
a loop keeping ten 10 M strings, a list of a million references to one 10 M string turned into text, two
nested loops of 100,000. So every intercepted operation (operator, call, filter, ``~``, ``{{ }}`` output)
and every ``for`` iteration checks a deadline (:data:`MAX_SECONDS` of the rendering thread's CPU time, one
``time.thread_time()``: a machine busy with other work, which only delays a render, never fails it), the text
and items those operations made are summed against :data:`MAX_ALLOCATED`, anything turned into text
(``{{ }}``, ``string``, ``join``, ``tojson``, ``sort``, ``~``, ``%``/``format`` arguments...) is first
measured by :func:`text_size` (which stops counting past the limit), and macros nest at most
:data:`MAX_MACRO_DEPTH` deep (Jinja macros recurse in Python).
"""

from __future__ import annotations

import contextvars
import re
import string
import time
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_TEXT = 10_000_000  # characters in any string a template builds, and in its rendered output
MAX_ITEMS = 1_000_000  # items in any list or tuple it builds
MAX_RANGE = 100_000  # items in range(); Jinja's own sandbox limit, said with the fix
MAX_INT_BITS = 100_000  # an integer of ~30,000 digits
MAX_SECONDS = 2.0  # CPU seconds per render; a prompt renders in microseconds
MAX_ALLOCATED = 50_000_000  # characters + items made by a render's operations, summed
MAX_MACRO_DEPTH = 50  # macro calls inside macro calls
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_PADDING_METHODS = {"center", "ljust", "rjust", "zfill"}
_PASSED = (jinja2.runtime.Context, jinja2.nodes.EvalContext, jinja2.Environment)  # what Jinja hands a filter first
# Filters that never turn their whole value into text (every other filter's value is measured first)
_NOT_TEXT_FILTERS = {"attr", "batch", "count", "d", "default", "first", "last", "length", "list", "map", "random",
                     "reject", "rejectattr", "reverse", "select", "selectattr", "slice", "abs", "round", "items"}


class TemplateLimit(SecurityError):
    """A template asked for more than a bound allows; the message names the bound and its value."""


class TemplateTimeout(TemplateLimit):
    """A render ran past :data:`MAX_SECONDS`."""


@dataclass
class _Budget:
    """What one render may still spend; held in :data:`_budget` while :func:`render_bounded` runs."""

    deadline: float
    seconds: float
    allocated: int = 0
    macro_depth: int = 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("evalsuite_template_budget", default=None)


def _spend(size: int = 0) -> None:
    """The render's clock and allocation check; a no-op outside a render (Jinja folds constants at compile)."""
    budget = _budget.get()
    if budget is None:
        return
    if time.thread_time() > budget.deadline:
        raise TemplateTimeout(f"the render used more than {budget.seconds:g} s of CPU time; the limit is {budget.seconds:g} s")
    if size:
        budget.allocated += size
        if budget.allocated > MAX_ALLOCATED:
            raise TemplateLimit(f"the render made {budget.allocated:,} characters and list items in all; "
                                f"the limit is {MAX_ALLOCATED:,}")


def _spent_on(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)):
        _spend(len(value))
    else:
        _spend()
    return value


_CONTAINERS = (list, tuple, set, frozenset, KeysView, ValuesView)


def text_size(value: Any, limit: int = MAX_TEXT) -> int:
    """About how many characters ``str(value)`` makes, counted only until past ``limit``: measuring a list
    of a million references to a 10 M string takes a moment, not the terabytes ``str()`` would ask for."""
    if isinstance(value, str):
        return len(value)
    return _Measure(limit).size(value)


class _Measure:
    """:func:`text_size` of nested values; a container seen before (shared or cyclic) is not walked again."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: dict[int, int] = {}

    def size(self, value: Any) -> int:
        if isinstance(value, str):
            return len(value) + 2  # its quotes in repr
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            return abs(value).bit_length() * 31 // 100 + 2  # ~0.3 digits per bit
        if isinstance(value, (dict, ItemsView)):
            pairs: Iterable[Any] = value.items() if isinstance(value, dict) else value
            return self._walk(value, (part for pair in pairs for part in pair))
        if isinstance(value, _CONTAINERS):
            return self._walk(value, value)
        return 30  # a number, a loop, a macro...: its str() is short

    def _walk(self, container: Any, items: Iterable[Any]) -> int:
        known = self.seen.get(id(container))
        if known is not None:
            return known
        self.seen[id(container)] = 5  # a cycle prints as [...]
        total = 2
        for item in items:
            total += self.size(item) + 2
            if total > self.limit:
                break
        self.seen[id(container)] = total
        return total


def _text_input(value: Any, what: str) -> None:
    """Refuse, before ``str()`` runs, a value whose text would pass MAX_TEXT."""
    if not isinstance(value, str):
        _text_limit(text_size(value), what)


def bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every ``{% for %}`` loops over: the deadline is checked on each iteration."""
    for item in iterable:
        _spend()
        yield item


def _text_limit(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise TemplateLimit(f"{what} would make {size:,} characters; the limit is {MAX_TEXT:,} characters")


def _items_limit(size: int, what: str) -> None:
    if size > MAX_ITEMS:
        raise TemplateLimit(f"{what} would make a list of {size:,} items; the limit is {MAX_ITEMS:,} items")


def _int_limit(bits: float, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimit(f"{what} would make an integer of about {int(bits):,} bits; the limit is {MAX_INT_BITS:,} bits")


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _text_limit(abs(value), f"{what} with the width {value}")


def _result(value: Any, what: str) -> Any:
    """After the call: bounded already by the checks before; this catches what they cannot foresee."""
    if isinstance(value, str):
        _text_limit(len(value), what)
    elif isinstance(value, (list, tuple)):
        _items_limit(len(value), what)
    return value


def _percent_format(fmt: str, args: Any, what: str) -> None:
    """``'%3000000000s' % x`` and ``'%*s' % (3000000000, x)``: widths and precisions, not the values."""
    star = False
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number == "*":
                star = True
            elif number:
                _width(int(number), what)
    if star:
        for value in args if isinstance(args, tuple) else (args,):
            _width(value, what)


def _brace_format(fmt: str, args: Iterable[Any], what: str) -> None:
    """``'{:>3000000000}'.format(x)``, and ``'{:{}}'.format(x, 3000000000)`` (a width passed as an argument)."""
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
    except ValueError:
        return  # format() itself will say what is wrong
    for spec in specs:
        if "{" in spec:
            for value in args:
                _width(value, what)
        for digits in _DIGITS.findall(spec):
            _width(int(digits), what)


def _check_binop(op: str, left: Any, right: Any) -> None:
    what = f"{type(left).__name__} {op} {type(right).__name__}"
    if op == "*":
        if isinstance(left, int) and isinstance(right, int):
            _int_limit(abs(left).bit_length() + abs(right).bit_length(), what)
            return
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and isinstance(seq, (str, list, tuple)):
                total = len(seq) * max(times, 0)
                (_text_limit if isinstance(seq, str) else _items_limit)(total, f"{what} ({len(seq):,} x {times:,})")
    elif op == "+":
        if isinstance(left, str) and isinstance(right, str):
            _text_limit(len(left) + len(right), what)
        elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _items_limit(len(left) + len(right), what)
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _int_limit(right * abs(left).bit_length(), f"{left} ** {right}")
    elif op == "%" and isinstance(left, str):
        _percent_format(left, right, "'%' formatting")
        _text_input(right, "'%' formatting")


def _joined_size(items: Sequence[Any], separator: str) -> int:
    """Summed with :func:`text_size`, stopping past MAX_TEXT: the items are not turned into text to count them."""
    total = len(separator) * max(len(items) - 1, 0)
    for item in items:
        total += text_size(item)
        if total > MAX_TEXT:
            break
    return total


def _replaced_size(text: str, old: str, new: str, count: Any = None) -> int:
    found = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _check_filter(name: str, value: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    what = f"the {name} filter"
    if name not in _NOT_TEXT_FILTERS and name != "join":
        _text_input(value, what)
    if name == "join" and "attribute" not in kwargs and len(args) < 2:
        separator = args[0] if args else kwargs.get("d", "")
        _text_limit(_joined_size(value, str(separator)), what)
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count")
        _text_limit(_replaced_size(value, str(args[0]), str(args[1]), count), what)
    elif name == "center":
        _width(args[0] if args else kwargs.get("width", 80), what)
    elif name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else int(width)
        _text_limit(len(value) + (value.count("\n") + 1) * pad, what)
    elif name == "format" and isinstance(value, str):
        _percent_format(value, tuple(args) or dict(kwargs), what)


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        plain = list(args)
        while plain and isinstance(plain[0], _PASSED):
            plain.pop(0)
        if plain:
            value = plain[0]
            if name == "join" and not isinstance(value, (list, tuple, str)):
                value = list(value)  # a generator (map, select) is read once: hand the list on
                args = (*args[: len(args) - len(plain)], value, *plain[1:])
            _check_filter(name, value, plain[1:], kwargs)
        return _spent_on(_result(original(*args, **kwargs), f"the {name} filter"))

    if hasattr(original, "jinja_pass_arg"):
        bounded.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]  # how Jinja passes context
    return bounded


def bounded_range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise TemplateLimit(f"range{args} would make {len(values):,} items; the limit is {MAX_RANGE:,} items")
    return values


def _check_method(owner: Any, name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    what = f"{type(owner).__name__}.{name}"
    if isinstance(owner, str):
        if name in _PADDING_METHODS and args:
            _width(args[0], what)
        elif name == "join" and args:
            _text_limit(_joined_size(list(args[0]), owner), what)
        elif name == "replace" and len(args) >= 2:
            count = args[2] if len(args) > 2 else kwargs.get("count")
            _text_limit(_replaced_size(owner, str(args[0]), str(args[1]), count), what)
        elif name in ("format", "format_map"):
            _brace_format(owner, [*args, *kwargs.values()], what)
            _text_input([*args, *kwargs.values()], what)
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            _text_limit(len(owner) + owner.count("\t") * max(int(tabsize), 0), what)
    elif isinstance(owner, list):
        if name == "extend" and args:
            _items_limit(len(owner) + len(args[0]), what)
        elif name in ("append", "insert"):
            _items_limit(len(owner) + 1, what)


class _BoundedCodeGenerator(CodeGenerator):
    """``a ~ b`` compiles to ``environment.bounded_concat(...)``, so a doubling loop meets MAX_TEXT; a
    ``for`` loops over ``bounded_iter(...)``, so nested loops meet the deadline."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not isinstance(node.iter, nodes.Call) or not isinstance(node.iter.node, nodes.EnvironmentAttribute):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None,
                                   lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(SandboxedEnvironment):
    """``SandboxedEnvironment`` + the bounds above. Not for autoescaped (HTML) templates: ``~`` yields str."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = bounded_range
        self.globals.pop("lipsum", None)  # lipsum(n) builds n paragraphs; no prompt needs it
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.finalize = self._bounded_finalize

    bounded_iter = staticmethod(bounded_iter)

    @staticmethod
    def _bounded_finalize(value: Any) -> Any:
        """Each ``{{ }}`` value, before Jinja turns it into text."""
        _text_input(value, "the {{ }} output")
        _spend()
        return value

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _spent_on(self.binop_table[operator](left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # the sandbox hands str.format out wrapped; the string is the wrapped method's __self__
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        name = getattr(__obj, "__name__", "")
        if owner is not None:
            _check_method(owner, name, args, kwargs)
        _spend()
        budget = _budget.get()
        if budget is None or not isinstance(__obj, jinja2.runtime.Macro):
            return _spent_on(_result(super().call(__context, __obj, *args, **kwargs), name or "a call"))
        if budget.macro_depth >= MAX_MACRO_DEPTH:
            raise TemplateLimit(f"macro {__obj.name!r} called itself (or other macros) more than {MAX_MACRO_DEPTH} "
                                f"deep; the limit is {MAX_MACRO_DEPTH} nested macro calls")
        budget.macro_depth += 1
        try:
            return _spent_on(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.macro_depth -= 1

    @staticmethod
    def bounded_concat(parts: Sequence[Any]) -> str:
        for part in parts:
            _text_input(part, "'~' concatenation")
        texts = [str(part) for part in parts]
        _text_limit(sum(map(len, texts)), "'~' concatenation")
        return _spent_on("".join(texts))


def render_bounded(template: jinja2.Template, context: dict[str, Any]) -> str:
    """``template.render`` within a fresh :class:`_Budget`, stopping as soon as the output passes MAX_TEXT
    (a loop printing a field)."""
    token = _budget.set(_Budget(time.thread_time() + MAX_SECONDS, MAX_SECONDS))
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_TEXT:
                raise TemplateLimit(f"the rendered text passed {MAX_TEXT:,} characters, the limit")
            chunks.append(chunk)
        return "".join(chunks)
    finally:
        _budget.reset(token)
