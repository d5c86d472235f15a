"""Rate limits: how many requests each caller may make, counted atomically for all processes.

Every limited request is charged to one or two buckets (docs/rate-limits.md):

- a player, by JWT or session: ``RATE_LIMIT_PLAYER``, one bucket for the API and the pages;
- a game key: its own ``requests_per_minute`` (the admin), else ``RATE_LIMIT_GAME_KEY``;
- anyone else: ``RATE_LIMIT_ANONYMOUS`` per client address (`client_address`);
- signing in (the token endpoint, the log-in pages) instead: ``RATE_LIMIT_SIGN_IN`` per
  address and ``RATE_LIMIT_SIGN_IN_USERNAME`` per username named, so guesses spread over
  many addresses slow down too; refreshing a token: ``RATE_LIMIT_SIGN_IN`` per address;
  signing up (the API and the page): ``RATE_LIMIT_SIGN_UP`` per address;
- an embedded image (a profile or share card): ``RATE_LIMIT_EMBEDS`` per address;
- an API key or a bearer token that fails (a 401): ``RATE_LIMIT_ANONYMOUS`` per address, a
  budget of its own (`credentials_checked`), so guessing keys and tokens is limited as
  signing in is.

The API is charged by DRF throttle classes (they run once DRF has authenticated the caller,
so no credential is checked twice), the pages by `RateLimitMiddleware`. Both answer 429
with ``Retry-After``.

Counting is the `limits` library's sliding window counter. With Redis
(``RATE_LIMIT_REDIS_URL``, by default ``REDIS_URL``) one charge is one EVALSHA whose Lua
script reads and increments inside Redis in one step, so a burst spread over any number of
processes cannot slip past a limit the way a read-then-write counter (DRF's own throttles,
over the cache) lets it. Without Redis, or while Redis does not answer, the counters live
in the process (`Limiter`). A game key's process charges its budget a lease at a time
(`Limiter._leased`, docs/rate-limits.md "Game keys: leases"): never more than the limit in
all, one Redis call per lease rather than per request.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from infra import breaker
from tracker.models import GameKey

log = logging.getLogger("questboard.ratelimits")

KEY_PREFIX = "qb:rl"
# A process warns that it counts on its own (Redis did not answer) at most this often.
WARN_EVERY_SECONDS = 60.0
# A game key's budget is taken from Redis in leases: one charge of up to LEASE_SHARE of its
# rate (at most LEASE_MAX requests), spent by the process within LEASE_SECONDS. What a
# lease leaves unspent is counted but never used. Only game keys lease: their budgets are
# large and they call hot paths (an unlock: one statement and one rank call besides).
LEASE_SHARE = 0.01
LEASE_MAX = 100
LEASE_SECONDS = 1.0
LEASED_SCOPES = frozenset({"game-key"})
# A process remembers at most this many refused buckets (`Limiter.hold`); past it, it
# forgets the lapsed ones, and all of them if none has lapsed.
MAX_HELD = 10_000


@dataclass(frozen=True)
class Bucket:
    """What a request is charged to: a scope ("player", "sign-in", ...), who within it,
    and the rate ("100/minute", the `limits` notation)."""

    scope: str
    who: str
    rate: str


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, at least 1 when refused


ALLOWED = Verdict(True)


@dataclass
class Lease:
    """Requests a process may still allow on a bucket without asking Redis, until `until`
    (monotonic seconds). With `left` 0 and `until` ahead, the bucket is near its limit: its
    requests are charged one at a time until then."""

    left: int
    until: float


def lease_size(limit: int) -> int:
    """How many requests one lease takes from a budget of `limit` a window."""
    return max(1, min(LEASE_MAX, int(limit * LEASE_SHARE)))


@lru_cache(maxsize=256)
def rate_item(rate: str) -> RateLimitItem:
    return parse(rate)


def seconds_until_free(
    *, limit: int, expiry: float, previous: int, previous_ttl: float, current: int, current_ttl: float
) -> float:
    """When the sliding window counter would next allow one hit, if none came meanwhile.

    The counter allows a hit while ``previous * previous_ttl / expiry + current < limit``:
    the previous window's count weighs less as it ages out. The current window becomes the
    previous one ``current_ttl - expiry`` seconds from now, and its count then ages out too.
    """
    shift = max(current_ttl - expiry, 0.0)
    if current < limit and previous:
        # The previous window's weight falls far enough before the shift.
        freed = previous_ttl - (limit - current) * expiry / previous
        if freed < shift:
            return max(freed, 0.0)
    if current <= limit or not current:
        return shift
    return shift + expiry * (1 - limit / current)


class Limiter:
    """Charges buckets in Redis, or in this process's memory when there is no Redis or it
    does not answer.

    Fail-safe, not fail-open: when Redis refuses, errs or takes longer than
    ``RATE_LIMIT_REDIS_TIMEOUT``, the request is charged to the process's own counters, so
    every limit still holds per process (with N processes, at most N times the limit) and no
    request fails or waits more than one timeout. A refusal or timeout opens the process's
    breaker for that Redis (`infra.breaker`, shared with the rank index and the cache when
    they live there): until a background ping finds it answering, the process does not ask
    it at all. It warns at most once a minute.
    """

    def __init__(self, redis_url: str, timeout: float) -> None:
        self.config = (redis_url, timeout)
        self.local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if redis_url:
            # The two keys of a sliding window share a hash tag ({key}), so the counters
            # run on a Redis Cluster too (redis+cluster://host:port).
            kind = RedisClusterStorage if redis_url.startswith("redis+cluster://") else RedisStorage
            storage = kind(
                redis_url,
                key_prefix=KEY_PREFIX,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                # No retry: a failed call falls back to the local counters at once.
                retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
            )
            self.shared = SlidingWindowCounterRateLimiter(storage)
            self.breaker = breaker.for_redis(redis_url, ping=lambda: storage.get_connection().ping())
        self._warned_at = -math.inf
        self.leases: dict[Bucket, Lease] = {}
        self._leases_lock = threading.Lock()
        # Buckets this process refuses without asking Redis, until when (monotonic seconds).
        self.held: dict[Bucket, float] = {}

    def charge(self, buckets: Sequence[Bucket]) -> Verdict:
        """Charge each bucket in turn; the first that is full refuses the request (and the
        ones after it are not charged)."""
        for bucket in buckets:
            item = rate_item(bucket.rate)
            size = lease_size(item.amount) if bucket.scope in LEASED_SCOPES else 1
            strategy, allowed = self._leased(item, bucket, size) if size > 1 else self._hit(item, bucket)
            if not allowed:
                return Verdict(False, self._retry_after(strategy, item, bucket))
        return ALLOWED

    def hold(self, bucket: Bucket, seconds: int) -> None:
        """Refuse `bucket` in this process for `seconds` without charging it (`held_for`)."""
        if len(self.held) >= MAX_HELD:
            now = time.monotonic()
            self.held = {held: until for held, until in self.held.items() if until > now}
            if len(self.held) >= MAX_HELD:
                self.held = {}
        self.held[bucket] = time.monotonic() + seconds

    def held_for(self, bucket: Bucket) -> int:
        """Whole seconds this process still refuses `bucket` (`hold`); 0 when it does not."""
        until = self.held.get(bucket)
        left = 0.0 if until is None else until - time.monotonic()
        return math.ceil(left) if left > 0 else 0

    def _leased(self, item: RateLimitItem, bucket: Bucket, size: int) -> tuple[SlidingWindowCounterRateLimiter, bool]:
        """Spend one request of this process's lease on `bucket`, taking a new lease of
        `size` when it is spent or stale; near the limit (a lease no longer fits), one
        request at a time, as unleased buckets are."""
        now = time.monotonic()
        with self._leases_lock:
            lease = self.leases.get(bucket)
            current = lease is not None and now < lease.until
            if current and lease.left > 0:  # type: ignore[union-attr]
                lease.left -= 1  # type: ignore[union-attr]
                return self.local, True
        if current:
            return self._hit(item, bucket)  # near the limit
        strategy, allowed = self._hit(item, bucket, cost=size)
        with self._leases_lock:
            if allowed:
                self.leases[bucket] = Lease(size - 1, now + LEASE_SECONDS)
                return strategy, True
            self.leases[bucket] = Lease(0, now + LEASE_SECONDS)
        return self._hit(item, bucket)

    def _hit(self, item: RateLimitItem, bucket: Bucket, cost: int = 1) -> tuple[SlidingWindowCounterRateLimiter, bool]:
        shared = self.shared
        if shared is not None:
            try:
                return shared, self.breaker.call(shared.hit, item, bucket.scope, bucket.who, cost=cost)
            except RedisError as error:
                self._fall_back(error)
        return self.local, self.local.hit(item, bucket.scope, bucket.who, cost=cost)

    def _fall_back(self, error: RedisError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS and not isinstance(error, breaker.Open):
            self._warned_at = now
            log.warning(
                "rate limits: Redis did not answer (%s); this process counts on its own "
                "(each limit holds per process) until it answers again",
                error,
            )

    def _retry_after(self, strategy: SlidingWindowCounterRateLimiter, item: RateLimitItem, bucket: Bucket) -> int:
        """Whole seconds until the bucket takes a request again: one more round trip, paid
        only by a refused request."""
        expiry = item.get_expiry()
        try:
            ask, key = strategy.storage.get_sliding_window, item.key_for(bucket.scope, bucket.who)
            window = self.breaker.call(ask, key, expiry) if strategy is self.shared else ask(key, expiry)
        except RedisError as error:
            self._fall_back(error)
            return expiry
        previous, previous_ttl, current, current_ttl = window
        wait = seconds_until_free(
            limit=item.amount,
            expiry=expiry,
            previous=previous,
            previous_ttl=previous_ttl,
            current=current,
            current_ttl=current_ttl,
        )
        # The first whole second strictly after the wait: at the wait itself it is still full.
        return max(1, math.floor(wait) + 1)


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> Limiter:
    """This process's limiter (made on first use, after any fork; made again if its
    settings changed, as tests change them)."""
    global _limiter
    config = (settings.RATE_LIMIT_REDIS_URL, settings.RATE_LIMIT_REDIS_TIMEOUT)
    found = _limiter
    if found is None or found.config != config:
        with _limiter_lock:
            if _limiter is None or _limiter.config != config:
                _limiter = Limiter(*config)
            found = _limiter
    return found


def reset() -> None:
    """Forget every count: the process's own, and those in Redis (tests only)."""
    global _limiter
    with _limiter_lock:
        if _limiter is not None and _limiter.shared is not None:
            with contextlib.suppress(RedisError):
                _limiter.shared.storage.reset()
        _limiter = None


# --- Who is charged ----------------------------------------------------------------------


def client_address(request: HttpRequest | Request) -> str:
    """The caller's address, as the bucket of anonymous requests and sign-ins.

    REMOTE_ADDR, unless ``RATE_LIMIT_TRUSTED_PROXIES`` (N) proxies of ours stand in front:
    then the address the first of them saw, which is N entries from the right of
    X-Forwarded-For (anything further left was written by the client and proves nothing).
    An IPv6 address counts by its /64 network: one host is usually given a whole one.
    """
    return address_of(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def address_of(address: str, forwarded_for: str) -> str:
    """`client_address` from the connection's address and its X-Forwarded-For header."""
    proxies = settings.RATE_LIMIT_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in forwarded_for.split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            address = forwarded[-min(proxies, len(forwarded))]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def caller_bucket(request: HttpRequest | Request) -> Bucket:
    """The player's, the game key's or the client address's bucket."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, GameKey):
        per_minute = auth.requests_per_minute
        rate = f"{per_minute}/minute" if per_minute else settings.RATE_LIMIT_GAME_KEY
        return Bucket("game-key", str(auth.pk), rate)
    return player_or_address(getattr(request, "user", None), lambda: client_address(request))


def socket_bucket(scope: dict[str, Any]) -> Bucket:
    """A WebSocket handshake's bucket: its player's (the same budget as their requests) or,
    for an anonymous watcher, its address's."""

    def address() -> str:
        headers = dict(scope.get("headers") or [])
        host = (scope.get("client") or ("",))[0] or ""
        return address_of(host, headers.get(b"x-forwarded-for", b"").decode("latin-1"))

    return player_or_address(scope.get("user"), address)


def player_or_address(user: Any, address: Callable[[], str]) -> Bucket:
    """A signed-in player's bucket, else the caller's address's (found only when needed)."""
    if user is not None and user.is_authenticated:
        return Bucket("player", str(user.pk), settings.RATE_LIMIT_PLAYER)
    return Bucket("address", address(), settings.RATE_LIMIT_ANONYMOUS)


# The messages of each socket, in the process that holds it (a socket lives in one).
_socket_messages = SlidingWindowCounterRateLimiter(MemoryStorage())


def socket_message_allowed(channel_name: str) -> bool:
    """Count one message a client sent on its socket; False once RATE_LIMIT_SOCKET_MESSAGES
    is spent."""
    return _socket_messages.hit(rate_item(settings.RATE_LIMIT_SOCKET_MESSAGES), "socket", channel_name)


def sign_in_buckets(request: HttpRequest | Request, username: object) -> list[Bucket]:
    """A password sign-in: per address, then per username (case-insensitive, hashed so a
    long made-up name costs no more Redis memory than a real one)."""
    buckets = [Bucket("sign-in", client_address(request), settings.RATE_LIMIT_SIGN_IN)]
    if isinstance(username, str) and username.strip():
        name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        buckets.append(Bucket("sign-in-name", name, settings.RATE_LIMIT_SIGN_IN_USERNAME))
    return buckets


def sign_up_bucket(request: HttpRequest | Request) -> Bucket:
    return Bucket("sign-up", client_address(request), settings.RATE_LIMIT_SIGN_UP)


def credentials_bucket(request: HttpRequest | Request) -> Bucket:
    """The credentials that failed from the caller's address: an anonymous caller's rate,
    counted apart from anonymous requests, so that a busy address's browsing never locks
    out its game servers and players."""
    return Bucket("credentials", client_address(request), settings.RATE_LIMIT_ANONYMOUS)


@contextlib.contextmanager
def credentials_checked(request: HttpRequest | Request, known: Callable[[], bool]) -> Iterator[None]:
    """Around the check of the API key or bearer token a request presents: each failure
    (AuthenticationFailed, a 401) is charged to `credentials_bucket`, as every sign-in is
    to its address; the one that finds it full becomes a 429 with ``Retry-After`` instead.

    Then, until that ``Retry-After`` has passed, this process answers 429 to every request
    of that address whose credentials it cannot check without the database (`known`: a key
    this process has already looked up, a token whose signature holds): a made-up key
    costs no lookup. Credentials `known` vouches for go on as usual, so one misconfigured
    server (a revoked key after a rotation, say) does not lock out the good ones behind
    the same address; guessing them is hopeless anyway (a key or a signature), the budget
    is about what guesses cost. Other addresses are not touched. Every other process learns
    of it at its own next failure from the address, so with N processes at most N checks
    more get through, each refused. A request that passes costs nothing more: no Redis
    call, and no address parsed while no bucket is held."""
    shared = limiter()
    if shared.held:
        wait = shared.held_for(credentials_bucket(request))
        if wait and not known():
            raise exceptions.Throttled(wait)
    try:
        yield
    except exceptions.AuthenticationFailed:
        bucket = credentials_bucket(request)
        verdict = shared.charge([bucket])
        if verdict.allowed:
            raise
        shared.hold(bucket, verdict.retry_after)
        raise exceptions.Throttled(verdict.retry_after) from None


# --- The API: DRF throttles ----------------------------------------------------------------


class CallerRateThrottle(BaseThrottle):
    """Every API view's throttle (DEFAULT_THROTTLE_CLASSES): the caller's bucket."""

    verdict = ALLOWED

    def buckets(self, request: Request) -> list[Bucket]:
        return [caller_bucket(request)]

    def allow_request(self, request: Request, view: Any) -> bool:
        self.verdict = limiter().charge(self.buckets(request))
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.retry_after or None


class SignInRateThrottle(CallerRateThrottle):
    """POST /api/v1/auth/token/: per address and per username."""

    def buckets(self, request: Request) -> list[Bucket]:
        data = request.data
        return sign_in_buckets(request, data.get("username") if isinstance(data, dict) else None)


class TokenRefreshRateThrottle(CallerRateThrottle):
    """POST /api/v1/auth/token/refresh/: per address, at the sign-in rate."""

    def buckets(self, request: Request) -> list[Bucket]:
        return [Bucket("token-refresh", client_address(request), settings.RATE_LIMIT_SIGN_IN)]


class SignUpRateThrottle(CallerRateThrottle):
    """POST /api/v1/players/ (registration): per address."""

    def buckets(self, request: Request) -> list[Bucket]:
        return [sign_up_bucket(request)]


# --- The pages: a middleware ---------------------------------------------------------------

# Never limited: the load balancer's probes.
UNLIMITED_VIEWS = frozenset({"healthz", "readyz"})
# Images other sites embed (profile cards in READMEs and forum signatures, share cards in
# link previews): fetched by image proxies and preview bots that serve many viewers from a
# few addresses, so they count against a budget of their own, larger than a browser's.
EMBED_VIEWS = frozenset({"profile-card-svg", "profile-card-png", "share-card"})
SIGN_IN_VIEWS = frozenset({"login", "admin:login"})
SIGN_UP_VIEWS = frozenset({"signup-page"})


def page_buckets(request: HttpRequest, view: Callable[..., Any]) -> list[Bucket]:
    """What a page request is charged to; nothing for API views (their throttles charge
    them), the health probes, and the admin but for its log-in (staff work behind a
    session; anyone else gets only a redirect to the log-in there). Static files never get
    this far: WhiteNoise answers them first."""
    # Imported here: rest_framework.views imports the throttle classes above.
    from rest_framework.views import APIView

    view_class = getattr(view, "cls", None)
    if isinstance(view_class, type) and issubclass(view_class, APIView):
        return []
    match = request.resolver_match
    name = match.view_name if match else ""
    if name in UNLIMITED_VIEWS:
        return []
    if request.method == "POST" and name in SIGN_IN_VIEWS:
        return sign_in_buckets(request, request.POST.get("username"))
    if request.method == "POST" and name in SIGN_UP_VIEWS:
        return [sign_up_bucket(request)]
    if match is not None and "admin" in match.namespaces:
        return []
    if name in EMBED_VIEWS:
        return [Bucket("embeds", client_address(request), settings.RATE_LIMIT_EMBEDS)]
    return [caller_bucket(request)]


def too_many_requests(retry_after: int) -> HttpResponse:
    """A page's 429: short plain text, and when to come back."""
    response = HttpResponse(
        f"Too many requests. Please try again in {retry_after} seconds.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(retry_after)
    return response


class RateLimitMiddleware:
    """Charges page requests before their view runs (after authentication, so a signed-in
    player is charged as a player)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        buckets = page_buckets(request, view)
        if not buckets:
            return None
        verdict = limiter().charge(buckets)
        return None if verdict.allowed else too_many_requests(verdict.retry_after)
