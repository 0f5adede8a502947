"""A bounded LRU cache of answers, keyed by (normalised question, parameters, index version).

The index version is part of the key, so a write (add, replace, delete, restore: each makes a new version)
makes every older entry unreachable without any explicit invalidation; old entries age out of the LRU.
Entries are stored and returned as deep copies: a caller that edits its result cannot change the cache.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any, Hashable


def normalise_question(question: str) -> str:
    """The cache's form of a question: whitespace runs collapsed to one space, lower-cased. Every model and
    feature of the pipeline reads questions this way already (uncased tokenizers, lower-cased BM25 and
    verifier terms), so two questions that differ only there get the same answer."""
    return " ".join(question.split()).lower()


class AnswerCache:
    """``AnswerCache(max_entries)``; ``max_entries`` 0 disables it (``get`` misses, ``put`` stores nothing)."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"answer cache size must be >= 0, not {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def get(self, key: Hashable) -> Any | None:
        """A copy of the cached value, or None."""
        if not self.enabled:
            return None
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return _copy(value)

    def put(self, key: Hashable, value: Any) -> None:
        if not self.enabled:
            return
        value = _copy(value)
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _copy(value: Any) -> Any:
    deep = getattr(value, "model_copy", None)  # pydantic models (AskResult)
    return deep(deep=True) if callable(deep) else copy.deepcopy(value)
