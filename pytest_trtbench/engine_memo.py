"""The harness's memo of cache entries and loaded engines, with a bound on engines kept loaded.

Every loaded engine holds device memory for its contexts until closed. A session that runs several
suites at several precisions and profiles would otherwise keep all of them (BERT-base engines at a few
profiles fill a 24 GB A10). Cases of one suite/precision/profile run together, so keeping the most
recently used few and closing the rest releases what a suite no longer needs; an engine needed again
is loaded again from the engine cache (a cache hit, no rebuild).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

MAX_LOADED_ENGINES = 2


class LoadedEngines:
    """A dict-like memo ``key -> (cache entry, engine or None)`` that closes the least recently used
    loaded engines beyond *max_loaded* and forgets their entries."""

    def __init__(self, max_loaded: int = MAX_LOADED_ENGINES) -> None:
        self.max_loaded = max(1, max_loaded)
        self._items: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __getitem__(self, key: Hashable) -> tuple[Any, Any]:
        self._items.move_to_end(key)
        return self._items[key]

    def __setitem__(self, key: Hashable, value: tuple[Any, Any]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        loaded = [k for k, (_, engine) in self._items.items() if engine is not None]
        for old in loaded[: max(0, len(loaded) - self.max_loaded)]:
            _, engine = self._items.pop(old)
            engine.close()

    def close(self) -> None:
        """Close every loaded engine (end of session)."""
        for _, engine in self._items.values():
            if engine is not None:
                engine.close()
        self._items.clear()
