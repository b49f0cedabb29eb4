"""Token buckets per caller and action, checked at the edge before any database work.

A caller is the access key id named in the Authorization header (or a digest of the bearer
token, or the client address when the header cannot be parsed). The header is NOT verified at
this point: verifying needs the key's secret from the database, and the point of the limit is
to turn excess traffic away before it costs a transaction. The price is that someone who
knows a key id can spend that key's budget; see docs/operations.md.

Buckets live in this process (``LocalBuckets``) or in Redis (``RedisBuckets``, one atomic Lua
script per check), so that several API processes enforce one shared limit.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from zbmc.auth import Credentials, token_digest
from zbmc.pipeline import Call
from zbmc.signature import MalformedAuthorization, parse_authorization

log = logging.getLogger("zbmc.ratelimit")

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_LIMIT = re.compile(r"^(\d+(?:\.\d+)?)/([smh])(?:,burst=(\d+))?$")
MAX_KEY_ID = 64  # longer "key ids" cannot exist, so they do not get a bucket of their own


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens added per second
    burst: int  # bucket size: requests allowed at once after a quiet period


@dataclass(frozen=True)
class Policy:
    default: Limit | None = None
    actions: Mapping[str, Limit | None] = field(default_factory=dict)

    def limit_for(self, action: str) -> Limit | None:
        return self.actions.get(action, self.default)

    @property
    def enabled(self) -> bool:
        return self.default is not None or any(v is not None for v in self.actions.values())


def parse_limit(text: str) -> Limit | None:
    """``N/s``, ``N/m`` or ``N/h``, optionally ``,burst=B`` (default burst: N); ``off``: none."""
    compact = re.sub(r"\s+", "", text)
    if compact.lower() == "off":
        return None
    match = _LIMIT.match(compact)
    if match is None:
        raise ValueError(f"rate limit {text!r}: expected e.g. '20/s', '600/m,burst=50' or 'off'")
    count, unit, burst = float(match[1]), match[2], match[3]
    if count <= 0:
        raise ValueError(f"rate limit {text!r}: the rate must be positive (or use 'off')")
    size = int(burst) if burst is not None else max(1, math.ceil(count))
    if size < 1:
        raise ValueError(f"rate limit {text!r}: burst must be at least 1")
    return Limit(rate=count / _UNITS[unit], burst=size)


def parse_policy(default: str | None, actions: str | None) -> Policy:
    """``default`` as for ``parse_limit``; ``actions`` like ``A=5/s,burst=10;B=1/s;C=off``."""
    overrides: dict[str, Limit | None] = {}
    pending: list[list[str]] = []  # [action, limit, burst?]
    for token in re.split(r"[;,\s]+", actions or ""):
        if not token:
            continue
        name, sep, value = token.partition("=")
        if name == "burst" and pending and len(pending[-1]) == 2:
            pending[-1].append(value)
        elif sep and name and value and name != "burst":
            pending.append([name, value])
        else:
            raise ValueError(f"ZBMC_RATE_LIMIT_ACTIONS: cannot read {token!r}")
    for item in pending:
        text = item[1] if len(item) == 2 else f"{item[1]},burst={item[2]}"
        overrides[item[0]] = parse_limit(text)
    return Policy(parse_limit(default) if default else None, overrides)


def caller_key(credentials: Credentials, client_host: str) -> str:
    header = (credentials.authorization or "").strip()
    if header.startswith("Bearer "):
        return "t:" + token_digest(header.removeprefix("Bearer ").strip())[:32]
    try:
        key_id = parse_authorization(header).access_key_id
    except MalformedAuthorization:
        return "ip:" + client_host
    return "k:" + key_id if len(key_id) <= MAX_KEY_ID else "ip:" + client_host


class Buckets(Protocol):
    async def take(self, key: str, limit: Limit) -> bool: ...

    async def close(self) -> None: ...


class LocalBuckets:
    """Buckets in this process; the least recently used are forgotten beyond ``max_keys``
    (a forgotten bucket comes back full, which only ever errs towards allowing)."""

    def __init__(
        self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, limit: Limit) -> bool:
        now = self.clock()
        tokens, last = self._state.pop(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * limit.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._state[key] = (tokens, now)
        if len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return allowed

    async def close(self) -> None:
        self._state.clear()


# Redis's own clock (TIME) is used so that processes on hosts with skewed clocks agree.
_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts',
  string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""


class RedisBuckets:
    """Buckets shared by every process using the same Redis and prefix. When Redis cannot be
    reached the request is allowed (and a warning logged): the limit protects the service, it
    must not become the reason the service is down."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio

        self.prefix = prefix
        self.client: Any = redis.asyncio.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self.script: Any = self.client.register_script(_SCRIPT)
        self._warned_at = -math.inf

    async def take(self, key: str, limit: Limit) -> bool:
        from redis.exceptions import RedisError

        try:
            result = await self.script(
                keys=[f"{self.prefix}:rl:{key}"], args=[repr(limit.rate), limit.burst]
            )
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._warned_at > 10:
                self._warned_at = time.monotonic()
                log.warning("rate limit store unavailable, allowing requests: %s", exc)
            return True
        return bool(result)

    async def close(self) -> None:
        await self.client.aclose()


class RateLimiter:
    """The edge's admission check: ``await limiter.admit(call, client_host)``."""

    def __init__(self, policy: Policy, buckets: Buckets, known_actions: Collection[str]) -> None:
        self.policy = policy
        self.buckets = buckets
        # Unknown actions are rejected by the pipeline without touching the database, and
        # must not create buckets for arbitrary names.
        self.known = frozenset(known_actions)

    async def admit(self, call: Call, client_host: str) -> bool:
        if not call.action or call.action not in self.known:
            return True
        limit = self.policy.limit_for(call.action)
        if limit is None:
            return True
        return await self.buckets.take(
            f"{caller_key(call.credentials, client_host)}|{call.action}", limit
        )

    async def close(self) -> None:
        await self.buckets.close()


def build_limiter(
    rate_limit: str | None,
    rate_limit_actions: str | None,
    redis_url: str | None,
    redis_prefix: str,
    known_actions: Collection[str],
) -> RateLimiter | None:
    """None when no limit is configured; raises ValueError on a malformed configuration."""
    policy = parse_policy(rate_limit, rate_limit_actions)
    if not policy.enabled:
        return None
    buckets: Buckets = RedisBuckets(redis_url, redis_prefix) if redis_url else LocalBuckets()
    return RateLimiter(policy, buckets, known_actions)
