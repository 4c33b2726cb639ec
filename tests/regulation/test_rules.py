"""The settlement rules as tables (pure): which bans a counted failure starts, in which order,
and how a ban escalates; the second-factor rules; the login's outcome mapping."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from authgate.core.errors import (
    AccountDisabled,
    AccountExpired,
    AccountLocked,
    AuthenticationFailed,
    DirectoryUnavailable,
    PasswordChangeRejected,
    PasswordExpired,
    PasswordMustChange,
)
from authgate.login.password import outcome_for
from authgate.regulation import AttemptOutcome
from authgate.regulation.limits import MAX_BAN
from authgate.regulation.rules import escalate, escalations, factor_escalations, judge_factor
from authgate.storage.regulation_rows import (
    ESCALATION_MEMORY,
    BanOrder,
    FactorCounts,
    FailureCounts,
    PriorBan,
)
from tests.regulation.conftest import limits

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LIM = limits(per_user=3, per_ip=5, spray_users=4)
B, IP, PW = "user:alice", "ip:203.0.113.1", "pw:mac"


def counts(bucket: int = 0, ip: int = 0, ip_users: int = 0, sprayed: int = 0, *,
           familiar: bool = False, repeat: bool = False) -> FailureCounts:
    return FailureCounts(familiar=familiar, bucket=B, bucket_failures=bucket, ip=IP,
                         ip_failures=ip, ip_users=ip_users, password=PW,
                         sprayed_users=sprayed, repeat=repeat)


@pytest.mark.parametrize(("c", "expected"), [
    (counts(2, 2, 1, 1), []),
    (counts(3, 3, 1, 1), [(B, "user_banned")]),
    (counts(3, 3, 1, 1, familiar=True), [(B, "user_ip_banned")]),
    (counts(9, 9, 9, 9, repeat=True), []),  # a repeat was counted once already: no ban
    (counts(0, 5, 1, 1), [(IP, "ip_banned")]),
    (counts(0, 5, 4, 1), [(IP, "spray_source")]),  # the source beats the per-IP limit
    (counts(0, 5, 1, 4), [(IP, "password_spray"), (PW, "password_spray")]),
    (counts(0, 1, 4, 4), [(IP, "spray_source"), (PW, "password_spray")]),
    (counts(3, 5, 4, 4), [(B, "user_banned"), (IP, "spray_source"), (PW, "password_spray")]),
])
def test_escalations_order_bucket_then_ip_then_password(c: FailureCounts,
                                                        expected: list[tuple[str, str]]) -> None:
    assert [(o.subject, o.reason) for o in escalations(c, LIM)] == expected


@pytest.mark.parametrize(("prior", "level", "lasts"), [
    (PriorBan(0, None), 0, timedelta(minutes=15)),
    (PriorBan(0, T0 - timedelta(hours=1)), 1, timedelta(minutes=30)),
    (PriorBan(2, T0 - timedelta(hours=23)), 3, timedelta(minutes=120)),
    (PriorBan(5, T0 - ESCALATION_MEMORY), 0, timedelta(minutes=15)),  # forgotten: level 0
    (PriorBan(40, T0 - timedelta(minutes=1)), 41, MAX_BAN),  # capped
])
def test_escalate_follows_the_previous_ban(prior: PriorBan, level: int,
                                           lasts: timedelta) -> None:
    lim = limits(ban_time=timedelta(minutes=15), escalation=2.0)
    ban = escalate(BanOrder(B, "user_banned"), prior=prior, limits=lim, now=T0)
    assert (ban.subject, ban.reason, ban.level, ban.until) == (B, "user_banned", level,
                                                               T0 + lasts)


@pytest.mark.parametrize(("banned", "failures", "reason", "bans"), [
    (False, 0, "", ()),
    (False, 2, "", ()),
    (False, 3, "factor_throttled", (BanOrder("factor:alice", "factor_banned"),)),
    (True, 0, "factor_banned", ()),
])
def test_factor_rules(banned: bool, failures: int, reason: str,
                      bans: tuple[BanOrder, ...]) -> None:
    lim = limits(factor_failures=3)
    c = FactorCounts("factor:alice", banned, failures)
    assert judge_factor(c, lim) == reason
    assert factor_escalations(c, lim) == bans


@pytest.mark.parametrize(("exc", "outcome"), [
    (AuthenticationFailed("invalid_credentials"), AttemptOutcome.WRONG_PASSWORD),
    (AuthenticationFailed("logon_hours"), AttemptOutcome.BIND_REFUSED),
    (AuthenticationFailed("bind_refused"), AttemptOutcome.BIND_REFUSED),
    (AuthenticationFailed("unknown_user"), AttemptOutcome.NOT_SENT),
    (AuthenticationFailed("empty_password"), AttemptOutcome.NOT_SENT),
    (AuthenticationFailed("ambiguous_user"), AttemptOutcome.NOT_SENT),
    (AccountLocked("775"), AttemptOutcome.NOT_SENT),
    (AccountDisabled(), AttemptOutcome.RIGHT_PASSWORD_REFUSED),
    (AccountExpired(), AttemptOutcome.RIGHT_PASSWORD_REFUSED),
    (PasswordExpired(), AttemptOutcome.RIGHT_PASSWORD_REFUSED),
    (PasswordMustChange(), AttemptOutcome.RIGHT_PASSWORD_REFUSED),
    (PasswordChangeRejected("too short"), AttemptOutcome.RIGHT_PASSWORD_REFUSED),
    (DirectoryUnavailable("no DC"), AttemptOutcome.UNAVAILABLE),
])
def test_login_maps_directory_answers_to_outcomes(exc: Exception,
                                                  outcome: AttemptOutcome) -> None:
    assert outcome_for(exc) is outcome
