"""Callbacks about one kind of change (a person renamed or removed), each removable again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Listeners(Generic[T]):
    """The callbacks that hear about one kind of change, called in the order they came."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Call ``callback(value)`` on every change; returns what removes it again (a window
        that closes, or moves to another context, stops hearing)."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def notify(self, value: T) -> None:
        """Tell every callback about a change."""
        for callback in list(self._callbacks):
            callback(value)

    def clear(self) -> None:
        """Forget every callback (the context was closed)."""
        self._callbacks.clear()

    def __len__(self) -> int:
        return len(self._callbacks)
