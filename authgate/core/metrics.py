"""The Prometheus families authgate exports at ``/metrics`` (docs/metrics.md lists each, its
labels and what to alert on). Declared once here, at the bottom of the layers, so that the
layers that observe (audit, directory, web) import them without importing each other; the
pure policy engine and the factor checks never import this module.

Under ``authgate serve`` every gunicorn worker writes its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen when the client is
first imported) and a scrape sums them. Gauges therefore name how workers combine:
``mostrecent`` for the figures a scrape reads from the database or files, which every worker
would report alike. Label values are bounded: rule ids from the approved policy, catalogued
reasons, configured domain controllers; never a host, path, user name or address.
"""
from __future__ import annotations

from time import perf_counter

from prometheus_client import Counter, Gauge, Histogram

#: /verify is a few milliseconds; a slow database shows as the upper buckets filling
_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)
#: a login step includes a directory bind and, when refused, the failure floor
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

DECISIONS = Counter(
    "authgate_verify_decisions_total",
    "Forward-auth answers by verdict (allow, challenge, deny, error) and policy rule id",
    ["verdict", "rule"])
VERIFY_SECONDS = Histogram(
    "authgate_verify_duration_seconds", "Time to answer GET /verify, inside the worker",
    buckets=_FAST)
LOGIN_STEP_SECONDS = Histogram(
    "authgate_login_step_duration_seconds",
    "Time to answer a sign-in step (password, totp, recovery, webauthn, passkey, "
    "password_change), refusals padded to the failure floor included", ["step"],
    buckets=_SLOW)
LOGIN_OUTCOMES = Counter(
    "authgate_login_outcomes_total",
    "Sign-in steps by step, outcome and catalogued audit reason", ["step", "outcome", "reason"])
RATE_LIMITED = Counter(
    "authgate_rate_limited_total",
    "Requests refused because their address asked too often: answered 429 (passkey_options, "
    "passkey_verify), or refused page requests counted instead of recorded "
    "(refusal_records)", ["endpoint"])
SPRAY_DETECTIONS = Counter(
    "authgate_spray_detections_total", "Password-spray bans set (audit event ban.spray)")
ACTIVE_BANS = Gauge(
    "authgate_active_bans", "Bans in force, by kind (user, ip, userip, factor, other), "
    "read from the database at scrape", ["kind"], multiprocess_mode="mostrecent")
DIRECTORY_BIND_SECONDS = Histogram(
    "authgate_directory_bind_duration_seconds",
    "Connect, TLS and bind to a domain controller (user and service binds)", ["server"],
    buckets=_FAST[3:])
DIRECTORY_ERRORS = Counter(
    "authgate_directory_errors_total",
    "Domain controller failures: unreachable (connect or TLS) or interrupted (bind lost)",
    ["server", "kind"])
DIRECTORY_UP = Gauge(
    "authgate_directory_up", "1 when the last connection to this domain controller opened, "
    "0 when it failed", ["server"], multiprocess_mode="mostrecent")
AUDIT_APPEND_SECONDS = Histogram(
    "authgate_audit_append_duration_seconds",
    "Time to seal and store one audit record (one append in 16 is timed)", buckets=_FAST)
AUDIT_APPEND_FAILURES = Counter(
    "authgate_audit_append_failures_total",
    "Audit records that could not be stored (database down or refusing): the request that "
    "wrote it was refused or failed")
CHECKPOINT_AGE = Gauge(
    "authgate_audit_checkpoint_age_seconds",
    "Seconds since the last signed checkpoint (-1: none yet), read at scrape",
    multiprocess_mode="mostrecent")
UNSIGNED_RECORDS = Gauge(
    "authgate_audit_unsigned_records",
    "Audit records stored after the last signed checkpoint, read at scrape",
    multiprocess_mode="mostrecent")
POLICY_INFO = Gauge(
    "authgate_policy_info", "1 for the digest of the policy set in force (0 for earlier ones)",
    ["digest"], multiprocess_mode="mostrecent")
POLICY_APPROVED = Gauge(
    "authgate_policy_approved_timestamp_seconds",
    "When the policy set in force was approved (0: no approval recorded for it)",
    multiprocess_mode="mostrecent")
BUILD_INFO = Gauge(
    "authgate_build_info", "Always 1: the running authgate and Python versions",
    ["version", "python"], multiprocess_mode="mostrecent")


def directory_reached(server: str, *, up: bool) -> None:
    """A connection to ``server`` (a configured DC URL) opened, or failed to."""
    DIRECTORY_UP.labels(server).set(1 if up else 0)
    if not up:
        DIRECTORY_ERRORS.labels(server, "unreachable").inc()


def directory_bound(server: str, started: float, *, interrupted: bool = False) -> None:
    """A bind on ``server`` answered (any verdict: a wrong password is not an outage), or
    its answer was lost. ``started`` is the ``perf_counter`` before the connection opened."""
    if interrupted:
        DIRECTORY_ERRORS.labels(server, "interrupted").inc()
    else:
        DIRECTORY_BIND_SECONDS.labels(server).observe(perf_counter() - started)
