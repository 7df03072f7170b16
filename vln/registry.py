"""A small generic registry: one instance per family of extensible things.

Families (simulator back-ends, datasets, encoders, agents, metrics) each get one
:class:`Registry`. Registering a duplicate name raises; looking up an unknown name raises
:class:`NameNotFound`, a ``KeyError`` that lists the known names with a "did you mean" hint.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from .errors import VLNError

T = TypeVar("T")


class NameNotFound(VLNError, KeyError):
    """An unknown name was looked up in a registry."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to registered objects of one family.

    Args:
        family: what the registry holds, used in error messages ("encoder", "dataset").
        base: optional class; registered classes must subclass it.
    """

    def __init__(self, family: str, base: type | None = None):
        self.family = family
        self.base = base
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            if self.base is not None and isinstance(item, type) and not issubclass(item, self.base):
                raise TypeError(f"{self.family} {name!r} must subclass {self.base.__name__}")
            self._items[name] = item
            return item

        if obj is None:
            return add
        return add(obj)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise :class:`NameNotFound` otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise NameNotFound(
                f"unknown {self.family} {name!r}; known: {', '.join(known) or '(none)'}.{hint}"
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted (feeds CLI ``choices``)."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
