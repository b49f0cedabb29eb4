"""Each instance's DescribeInstances answer, encoded, kept in the API process until anything it
shows changes (docs/performance.md, "DescribeInstances: the fragment cache").

An entry is the instance's JSON object as the pipeline's encoder writes it inside the page, in
two parts around its ``instanceType`` (which the page splices in: each type is encoded once and
kept apart, under its own ``row_version``). Its key (``zbmc.store.instance_pages.KEY``) holds
everything the object is made of:

* the instance id and ``row_version``, which the database itself sets to a new random value
  whenever the row changes, whoever writes it (triggers: migration 0010);
* what comes from other tables, read with the key in the same statement: the instance type's
  id and ``row_version`` (whether it is HA sets the default NIC names), the image's name, the
  resource group's name;
* and, by the map it is kept in, the API version.

Nothing the object shows is computed from the clock. So an entry found under a page's key is
byte for byte what the rows give now, and a changed row, a renamed image or group, a changed
type is a different key: stale entries are never found, only evicted (least recently used
first, once the entries of both versions exceed ``ZBMC_DESCRIBE_CACHE_MB``; 0 keeps none).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any

# (instance_id, row_version, instance_type_id, type row_version, image_name, group_name)
Key = tuple[Any, ...]
Fragment = tuple[bytes, bytes]  # the object up to its instanceType's value, and after it

# Bytes an entry takes besides its two fragments' contents (key tuple and strings, two bytes
# objects' headers, the ordered dict's node, the allocator's slack), so that the limit bounds
# the process's memory: at 1M instances, 1500 pages read with a 64 MiB limit grew the resident
# memory by 76.6 MB with 420 here (bench/describe_cpu.py --sweep; 0.1 MB without the cache),
# i.e. about 1700 bytes an entry of some 1000 bytes of fragments.
ENTRY_OVERHEAD = 700
# Encoded instance types kept at most (a catalogue has a few dozen).
MAX_TYPES = 1000


class Fragments:
    """Least-recently-used maps (one per API version) of ``Key`` -> ``Fragment``, bounded
    together by the bytes they hold; and the encoded instance types by (id, row_version,
    version). Thread-safe (one lock per page's lookups or stores)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.size = 0
        self._maps: dict[str, collections.OrderedDict[Key, Fragment]] = {}
        self._types: dict[tuple[Any, ...], bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._maps.values())

    def get(self, version: str, keys: Sequence[Key]) -> list[Fragment | None]:
        with self._lock:
            entries = self._maps.get(version)
            if entries is None:
                return [None] * len(keys)
            found = [entries.get(key) for key in keys]
            for key, fragment in zip(keys, found, strict=True):
                if fragment is not None:
                    entries.move_to_end(key)
        return found

    def put(self, version: str, items: Sequence[tuple[Key, Fragment]]) -> None:
        with self._lock:
            entries = self._maps.setdefault(version, collections.OrderedDict())
            for key, fragment in items:
                if key not in entries:
                    entries[key] = fragment
                    self.size += _cost(fragment)
            for oldest in (entries, *self._maps.values()):
                while self.size > self.limit and oldest:
                    _, old = oldest.popitem(last=False)
                    self.size -= _cost(old)

    def type_of(self, key: tuple[Any, ...]) -> bytes | None:
        """The encoded instance type under (id, row_version, version)."""
        return self._types.get(key)

    def keep_type(self, key: tuple[Any, ...], encoded: bytes) -> None:
        with self._lock:
            if len(self._types) >= MAX_TYPES:
                self._types.clear()
            self._types[key] = encoded

    def clear(self) -> None:
        with self._lock:
            self._maps.clear()
            self._types.clear()
            self.size = 0


def _cost(fragment: Fragment) -> int:
    return len(fragment[0]) + len(fragment[1]) + ENTRY_OVERHEAD


_CACHE = Fragments(0)


def cache(limit_mb: float) -> Fragments:
    """The process's cache, bounded by ``limit_mb`` (the setting of the calling server)."""
    _CACHE.limit = int(limit_mb * 1024 * 1024)
    return _CACHE
