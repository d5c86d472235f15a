"""Small per-process caches for rows every hot request reads: game keys, games and
achievements (the catalogue).

Each entry lives `CATALOGUE_CACHE_SECONDS` at most, so a change made by another process
(a revoked key, an edited achievement) is seen everywhere within that many seconds; the
process that makes a change forgets the entries it touched at once. Only rows whose
staleness is harmless for that long are kept here: nothing that counts (points added to
totals are read from the table inside the unlock statement, never from this cache).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

V = TypeVar("V")
ALL: list[LocalCache] = []


class LocalCache(Generic[V]):
    """A bounded, thread-safe map whose entries expire after the catalogue TTL."""

    def __init__(self, name: str, max_entries: int = 10_000) -> None:
        self.name = name
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()
        ALL.append(self)

    def peek(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The cached value of `key`, or `load()`'s (kept if not None)."""
        value = self.peek(key)
        if value is None:
            value = load()
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare: more distinct rows than a catalogue holds
            self._entries[key] = (time.monotonic() + settings.CATALOGUE_CACHE_SECONDS, value)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget(self, predicate: Callable[[V], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._entries.items() if predicate(v)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    """Forget every cached row in this process (tests; after a bulk change)."""
    for cache in ALL:
        cache.clear()
