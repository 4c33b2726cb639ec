"""The AD lockout arithmetic, the margin check and the admission order (pure)."""
from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from authgate.regulation.limits import MAX_BAN, ad_budget, check_lockout_margin, ip_subject
from authgate.regulation.rules import judge
from authgate.storage.regulation_rows import Ban, Snapshot
from tests.regulation.conftest import ad, limits

W = timedelta(minutes=30)


@pytest.mark.parametrize(("threshold", "total", "unfamiliar"), [
    (2, 1, 1), (3, 2, 1), (4, 3, 2), (5, 4, 2), (10, 9, 5), (50, 49, 25)])
def test_budget_keeps_a_reserve_below_the_threshold(threshold: int, total: int,
                                                    unfamiliar: int) -> None:
    budget = ad_budget(threshold, W)
    assert budget is not None
    assert (budget.total, budget.unfamiliar) == (total, unfamiliar)
    assert budget.total < threshold  # the T-th failure would lock: never forwarded
    assert budget.unfamiliar_limit(has_familiar=False) == total
    assert budget.window > W  # forgets later than AD does


def test_no_budget_when_ad_never_locks() -> None:
    assert ad_budget(0, W) is None
    assert check_lockout_margin(5, 0, ad_window=W, policy_window=W).severity == "ok"


@pytest.mark.parametrize(("policy", "ad_threshold", "severity"), [
    (5, 3, "error"),  # the shipped default against the test domain: AD would lock first
    (3, 3, "error"),
    (2, 3, "warning"),  # unfamiliar IPs get 1: clamped, said so
    (1, 3, "ok"),
    (4, 10, "ok"),
    (1, 1, "error"),  # any failure locks
    (1, 2, "warning"),  # no reserve possible
])
def test_margin(policy: int, ad_threshold: int, severity: str) -> None:
    margin = check_lockout_margin(policy, ad_threshold, ad_window=W, policy_window=W)
    assert margin.severity == severity, margin.messages
    assert margin.ok is (severity != "error")


def test_margin_names_the_fix() -> None:
    margin = check_lockout_margin(5, 3, ad_window=W, policy_window=timedelta(minutes=15))
    assert "at most 2" in margin.messages[0]
    assert any("shorter than AD's observation window" in m for m in margin.messages)


def test_ban_escalates_and_is_capped() -> None:
    lim = limits(ban_time=timedelta(minutes=15), escalation=2.0)
    assert [lim.ban_duration(n) for n in range(3)] == [
        timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=60)]
    assert lim.ban_duration(40) == MAX_BAN


@pytest.mark.parametrize(("raw", "subject"), [
    ("203.0.113.9", "203.0.113.9"), ("::ffff:203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"), ("garbage", "garbage")])
def test_ip_subject(raw: str, subject: str) -> None:
    assert ip_subject(raw) == subject


def snap(**changes: object) -> Snapshot:
    values: dict[str, object] = dict(familiar=False, has_familiar=True, bans=(),
                                     bucket_failures=0, ip_failures=0, chain=0,
                                     chain_unfamiliar=0)
    values.update(changes)
    return Snapshot(**values)  # type: ignore[arg-type]


def test_judge_order_and_ad_guard() -> None:
    lim = limits(per_user=5, per_ip=20, ad=ad(3))
    from datetime import datetime
    ban = Ban("ip:1.2.3.4", "spray_source", datetime.now(UTC), 0)
    assert judge(snap(bans=(ban,), bucket_failures=9), lim) == "spray_source"
    assert judge(snap(bucket_failures=5), lim) == "user_throttled"
    assert judge(snap(ip_failures=20), lim) == "ip_throttled"
    assert judge(snap(chain_unfamiliar=1, chain=1), lim) == "ad_lockout_guard"
    assert judge(snap(chain_unfamiliar=1, chain=1, familiar=True), lim) == ""  # the reserve
    assert judge(snap(chain=2, familiar=True), lim) == "ad_lockout_guard"
    assert judge(snap(chain_unfamiliar=1, chain=1, has_familiar=False), lim) == ""
    assert judge(snap(), limits(ad=None)) == ""
