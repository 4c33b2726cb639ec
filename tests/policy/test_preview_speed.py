"""The preview's fast path (issue 19: 100k decisions/s with 2 jobs) changes nothing it
reports: a cached decision is the one ``decide`` returns, and the report of ``--jobs N``
(records split by id range, replayed in forked workers, merged) is the one-job report."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest

from authgate.core.values import Level
from authgate.policy.files import load_policy_set
from authgate.policy.preview import AuditedDecision, replay
from authgate.policy.preview_cache import DecisionCache
from authgate.policy.values import Verdict
from tests.conftest import TEST_POLICIES
from tests.policy.test_preview import HISTORY, PENDING, history, preview_of, settings  # noqa: F401

HOSTS = ("localhost", "hr.city.test", "finance.city.test", "library.city.test",
         "a.fin.city.test", "LOCALHOST")
PATHS = ("/", "/app/a", "/reports/q", "/mfa/x", "/strong/", "/public/x", "/forbidden/shared",
         "/admin/", "/payments/approve", "/healthz", "/a/../b", "/x;y")
GROUPS = ("City-Staff", "IT-Dept", "HR-Staff", "authgate-admins", "Finance")
IPS = (None, "10.1.1.1", "172.20.4.5", "203.0.113.9", "::ffff:10.1.1.1", "2001:db8::1")


def random_decision(rng: random.Random, n: int) -> AuditedDecision:
    user = rng.choice((None, "alice", "bob", "Bob", "carl"))
    at = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=rng.randrange(7 * 86400))
    ip = rng.choice(IPS)
    return AuditedDecision(
        record_id=n, at=at, host=rng.choice(HOSTS), path=rng.choice(PATHS),
        method=rng.choice(("GET", "POST")), query=rng.choice(("", "a=1")), user=user,
        groups=frozenset(rng.sample(GROUPS, rng.randrange(3))) if user else frozenset(),
        level=rng.choice(list(Level)) if user else Level.NONE,
        auth_age=rng.choice((None, timedelta(seconds=rng.randrange(50_000)))) if user else None,
        idle=rng.choice((None, timedelta(seconds=rng.randrange(4_000)))) if user else None,
        ip=ip_address(ip) if ip else None, verdict=Verdict.ALLOW, rule_id=None)


@pytest.mark.parametrize("seed", range(3))
def test_a_cached_decision_is_the_one_decide_returns(tmp_path: Path, seed: int) -> None:
    pending = tmp_path / "pending"
    shutil.copytree(TEST_POLICIES, pending)
    (pending / "85-pending.yaml").write_text(PENDING, encoding="utf-8")
    ps = load_policy_set(pending)
    rng = random.Random(seed)
    records = [random_decision(rng, n) for n in range(3000)]
    for cache in (DecisionCache(ps), DecisionCache(ps, limit=500)):  # full, and starting over
        for d in records + records:  # the second pass is served from the cache
            assert cache.decide(d) == replay(ps, d), d
    assert DecisionCache(ps).hits == 0 and cache.hits > 0
    full = DecisionCache(ps)
    for d in records + records:
        full.decide(d)
    assert full.hits >= 3000  # every repeat, and records the engine cannot tell apart


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_the_report_of_several_jobs_is_the_one_job_report(
        settings, history, tmp_path, jobs) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    one = preview_of(settings, tmp_path / "pending", samples=1)
    several = preview_of(settings, tmp_path / "pending", samples=1, jobs=jobs)
    assert several.to_dict() == one.to_dict()
    assert one.replayed == len(HISTORY) and one.changed == 5
