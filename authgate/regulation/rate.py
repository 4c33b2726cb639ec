"""Requests per client address in this process: token buckets (pure: no I/O, no storage).

For the endpoints anyone may call before naming an account or a password, where each call
still costs a database write: the passkey sign-in's challenge (``/login/passkey/options``)
and its refusal record (``/login/passkey/verify``). The throttle in ``regulator`` counts
failed credentials per account and address; it has nothing to count here, so without this
one address could make the gateway write as fast as it answers, and every ``/verify`` of
the city waits for the same database (pen test F7).

An address (IPv6 by /64, as the throttle counts them: ``limits.ip_subject``) starts with
``per_minute`` tokens and gets them back at ``per_minute`` a minute. Each worker process
keeps its own buckets, so N workers let an address through N times as often; memory stays
bounded: past ``max_keys`` addresses the least recently seen is forgotten (it starts full
again, which a client with that many addresses could have had anyway).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from authgate.core.clock import Clock
from authgate.regulation.limits import ip_subject

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, *, per_minute: int, clock: Clock, max_keys: int = MAX_KEYS) -> None:
        if per_minute < 1:
            raise ValueError("a rate limit needs at least one request a minute")
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()  # the portal serves many threads per process

    def take(self, client_ip: str) -> float:
        """0.0 when ``client_ip`` may go ahead (one token spent); otherwise the seconds until
        its next token (nothing spent: a refused call does not push its wait further)."""
        key = ip_subject(client_ip)
        now = self._clock.now().timestamp()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self._capacity, now))
            # a clock set back gives nothing back; one set forward refills at most to full
            tokens = min(self._capacity, tokens + max(0.0, now - then) * self._per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self._per_second
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return wait


class RecordSampler:
    """Which refused requests of an address get an audit record of their own (pen test of
    the rate limit, F1: a POST without its CSRF token, a wrong method or an oversized body
    was refused and recorded, one record each, as fast as one address could send them).

    The first ``per_minute`` of an address a minute are recorded (a token each, as
    ``RateLimiter``); past that they are counted, not recorded, and the next record of that
    address says how many went unrecorded since the one before: a flood from one address
    leaves ``per_minute`` records, then about one a ``60 / per_minute`` seconds, each
    carrying its count (the metric ``authgate_rate_limited_total`` counts them as well)."""

    def __init__(self, *, per_minute: int, clock: Clock, max_keys: int = MAX_KEYS) -> None:
        self._limiter = RateLimiter(per_minute=per_minute, clock=clock, max_keys=max_keys)
        self._max_keys = max_keys
        self._unrecorded: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client_ip: str) -> int | None:
        """None: count this refusal, do not record it; otherwise record it, noting the
        returned number of this address's refusals left unrecorded since its last record."""
        key = ip_subject(client_ip)
        allowed = self._limiter.take(client_ip) == 0.0
        with self._lock:
            if not allowed:
                self._unrecorded[key] = self._unrecorded.pop(key, 0) + 1
                while len(self._unrecorded) > self._max_keys:
                    self._unrecorded.popitem(last=False)
                return None
            return self._unrecorded.pop(key, 0)
