"""Answers the pages reuse while the history is unchanged: a page asked again (a filter
toggled back, a reload) costs a lookup, not a pass over the history."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class AnswerCache:
    """At most ``size`` answers, each valid for ``max_age`` seconds and only while the
    ``version`` it was computed under (the learner's history version and champion) holds."""

    def __init__(self, max_age: float, size: int = 256) -> None:
        self.max_age = max_age
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Hashable, float, Any]] = OrderedDict()

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version and now - entry[1] <= self.max_age:
                self._entries.move_to_end(key)
                cached: T = entry[2]
                return cached
        value = compute()
        with self._lock:
            self._entries[key] = (version, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value
