"""One registry type for every name a case file can write: metrics, parsers and providers.

Built-ins register with a decorator when their module is imported; a ``conftest.py`` registers the
same way before collection; an installed package declares an entry point in the group
``evalsuite.<kind>s`` (``evalsuite.metrics``, ``evalsuite.parsers``, ``evalsuite.providers``), loaded
the first time a name is looked up or listed, so ``python -m evalsuite compare`` sees it too. A miss is
an :class:`~evalsuite.errors.UnknownName` that lists the valid names with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from types import CodeType
from typing import Generic, TypeVar

from evalsuite.errors import EvalsuiteError, UnknownName

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> registered objects of one kind, fed by decorators and by entry points."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.group = f"evalsuite.{kind}s"
        self._entries: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (what case files write)."""

        def add(obj: T) -> T:
            self.add(name, obj)
            return obj

        return add

    def add(self, name: str, obj: T) -> None:
        current = self._entries.get(name)
        if current is not None and current is not obj and _definition(current) != _definition(obj):
            raise EvalsuiteError(
                f"{self.kind} {name!r} is registered twice ({_shown(current)} and {_shown(obj)}); rename one"
            )
        self._entries[name] = obj  # re-registering the same definition (a re-imported conftest) is fine

    def get(self, name: str) -> T:
        if name not in self._entries:
            self.load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._entries, key=str.lower)

    def load_entry_points(self) -> None:
        """Import every entry point of this registry's group once; each registers itself (or is registered)."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for point in entry_points(group=self.group):
            if point.name in self._entries:
                continue
            try:
                loaded = point.load()
            except Exception as exc:  # a broken extension names itself instead of breaking every run
                raise EvalsuiteError(
                    f"entry point {point.name!r} in group {self.group!r} ({point.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}; fix or uninstall the package that declares it"
                ) from None
            if point.name not in self._entries:
                self.add(point.name, loaded)


def _definition(obj: object) -> tuple[str | None, str]:
    """Where ``obj`` is defined: its source file and qualname. The module name alone is not enough: two
    sibling ``conftest.py`` files are both module ``conftest`` under pytest's default import mode."""
    return _source_file(obj), f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _source_file(obj: object) -> str | None:
    """The file of the first code object found on ``obj``, its attributes (a wrapped function) or its classes'
    methods. Read from the code, not via ``sys.modules``: pytest replaces one ``conftest`` module by the next."""
    owners = obj.__mro__ if isinstance(obj, type) else (obj,)
    for owner in owners:
        for candidate in (owner, *getattr(owner, "__dict__", {}).values()):
            code = getattr(getattr(candidate, "__func__", candidate), "__code__", None)
            if isinstance(code, CodeType):
                return code.co_filename
    return None


def _shown(obj: object) -> str:
    file, qualname = _definition(obj)
    return f"{qualname} in {file}" if file else qualname
