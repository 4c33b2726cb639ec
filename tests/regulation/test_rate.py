"""The per-address request rate (``regulation.rate``): pure, on an injected clock."""
from __future__ import annotations

import pytest

from authgate.core.clock import FixedClock
from authgate.regulation.rate import RateLimiter, RecordSampler


def spend(limiter: RateLimiter, ip: str, n: int) -> list[float]:
    return [limiter.take(ip) for _ in range(n)]


def test_an_address_gets_its_minute_then_waits_for_the_next_token() -> None:
    clock = FixedClock()
    limiter = RateLimiter(per_minute=6, clock=clock)
    assert spend(limiter, "198.51.100.7", 6) == [0.0] * 6
    assert limiter.take("198.51.100.7") == pytest.approx(10.0)  # one token a 10 s
    clock.advance(seconds=4)
    assert limiter.take("198.51.100.7") == pytest.approx(6.0)  # a refusal spent nothing
    clock.advance(seconds=6)
    assert limiter.take("198.51.100.7") == 0.0
    assert limiter.take("198.51.100.7") > 0


def test_a_quiet_address_never_saves_up_more_than_a_minute() -> None:
    clock = FixedClock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    clock.advance(hours=5)
    assert spend(limiter, "198.51.100.7", 4)[-1] > 0


def test_addresses_are_counted_apart_and_ipv6_by_its_64() -> None:
    limiter = RateLimiter(per_minute=2, clock=FixedClock())
    spend(limiter, "2001:db8:1:2::1", 2)
    assert limiter.take("2001:db8:1:2:ffff::9") > 0  # same /64: one subscriber
    assert limiter.take("::ffff:198.51.100.7") == 0.0  # mapped IPv4 is the IPv4 address
    assert limiter.take("198.51.100.7") == 0.0
    assert limiter.take("198.51.100.7") > 0
    assert limiter.take("2001:db8:1:3::1") == 0.0
    assert limiter.take("198.51.100.8") == 0.0


def test_a_clock_set_back_gives_nothing_back() -> None:
    clock = FixedClock()
    limiter = RateLimiter(per_minute=2, clock=clock)
    spend(limiter, "198.51.100.7", 2)
    clock.advance(hours=-1)
    assert limiter.take("198.51.100.7") > 0


def test_memory_is_bounded_least_recently_seen_forgotten_first() -> None:
    limiter = RateLimiter(per_minute=1, clock=FixedClock(), max_keys=3)
    spend(limiter, "10.0.0.1", 1)
    spend(limiter, "10.0.0.2", 1)
    assert limiter.take("10.0.0.1") > 0  # seen again: now the most recent
    spend(limiter, "10.0.0.3", 1)
    spend(limiter, "10.0.0.4", 1)  # four addresses: 10.0.0.2 is forgotten
    assert limiter.take("10.0.0.1") > 0 and limiter.take("10.0.0.4") > 0
    assert limiter.take("10.0.0.2") == 0.0


def test_no_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, clock=FixedClock())


def test_past_the_rate_refusals_are_counted_and_the_next_record_says_how_many() -> None:
    clock = FixedClock()
    sampler = RecordSampler(per_minute=3, clock=clock)
    assert [sampler.admit("198.51.100.7") for _ in range(3)] == [0, 0, 0]
    assert [sampler.admit("198.51.100.7") for _ in range(40)] == [None] * 40
    assert sampler.admit("198.51.100.8") == 0  # another address: its own minute
    clock.advance(seconds=20)  # one token back
    assert sampler.admit("198.51.100.7") == 40
    assert sampler.admit("198.51.100.7") is None
    clock.advance(seconds=20)
    assert sampler.admit("198.51.100.7") == 1
