"""Each instance's DescribeInstances answer, encoded, kept in the API process until anything it
shows changes (docs/performance.md, "DescribeInstances: the fragment cache").

An entry is the instance's JSON object as the pipeline's encoder writes it inside the page, in
two parts around its ``instanceType`` (which the page splices in, encoded once per type and
answer). Its key holds everything the object is made of:

* the instance id and ``row_version``, which the database itself sets to a new random value
  whenever the row changes, whoever writes it (a trigger: migration 0010);
* what comes from other tables, read with the key in the same statement: the image's name, the
  resource group's name, whether the instance type is HA (the default NIC names);
* the API version.

Nothing the object shows is computed from the clock. So an entry found under a page's key is
byte for byte what the row gives now, and a changed row, a renamed image or group, another
version is a different key: stale entries are never found, only evicted (least recently used
first, once the entries exceed ``ZBMC_DESCRIBE_CACHE_MB``; 0 keeps none).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any

# (instance_id, row_version, is_ha, image_name, group_name, version)
Key = tuple[str, int, bool, str | None, str | None, str]
Fragment = tuple[bytes, bytes]  # the object up to its instanceType's value, and after it

# Bytes an entry takes besides its two fragments' contents (key tuple and strings, two bytes
# objects' headers, the ordered dict's node), measured with tracemalloc at 1M instances
# (bench/describe_cpu.py --sweep); used to keep the total under the limit.
ENTRY_OVERHEAD = 420


class Fragments:
    """A least-recently-used map of ``Key`` -> ``Fragment``, bounded by the bytes it holds.
    Thread-safe (one lock per page's lookups or stores)."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.size = 0
        self._entries: collections.OrderedDict[Key, Fragment] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, keys: Sequence[Key]) -> list[Fragment | None]:
        found: list[Fragment | None] = []
        entries = self._entries
        with self._lock:
            for key in keys:
                fragment = entries.get(key)
                if fragment is not None:
                    entries.move_to_end(key)
                found.append(fragment)
        return found

    def put(self, items: Sequence[tuple[Key, Fragment]]) -> None:
        entries = self._entries
        with self._lock:
            for key, fragment in items:
                if key not in entries:
                    entries[key] = fragment
                    self.size += _cost(fragment)
            while self.size > self.limit and entries:
                _, old = entries.popitem(last=False)
                self.size -= _cost(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0


def _cost(fragment: Fragment) -> int:
    return len(fragment[0]) + len(fragment[1]) + ENTRY_OVERHEAD


_CACHE = Fragments(0)


def cache(limit_mb: float) -> Fragments:
    """The process's cache, bounded by ``limit_mb`` (the setting of the calling server)."""
    _CACHE.limit = int(limit_mb * 1024 * 1024)
    return _CACHE


def key_of(row: Any, version: str) -> Key:
    """The key of a page's key row or full row (``zbmc.store.instance_pages``)."""
    return (
        row.instance_id,
        row.row_version,
        bool(row.is_ha),
        row.image_name,
        row.group_name,
        version,
    )
