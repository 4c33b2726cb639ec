"""``authgate policy``: check, approve, explain and test the policy set.

Thin click wrappers around :mod:`authgate.policy`; all logic lives there so the web layer and
the CLI share it. Exit status 1 means "do not deploy this": invalid, failing or unapproved.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from authgate.cli.context import Context
from authgate.core.errors import PolicyError, StorageError
from authgate.core.values import Level
from authgate.policy.explain import explain
from authgate.policy.files import approval, load_policy_set
from authgate.policy.files.cases import (
    make_subject,
    parse_instant,
    resource_from_url,
    run_cases,
    uncovered_rules,
)
from authgate.policy.files.nodes import parse_duration
from authgate.policy.preview_report import PreviewPart, PreviewReport, merge_parts
from authgate.policy.values import PolicySet


def _configured_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path:
    """The policy directory, first match wins: ``--policies``, the configuration's
    ``policy.path`` when ``--config``/``$AUTHGATE_CONFIG`` names one (the directory the
    gateway serves: approving another one would be meaningless, issue 15 item 8),
    ``$AUTHGATE_POLICIES``, else ``policies``. Each command names the directory it used."""
    if value is None:
        value = _from_config(ctx) or Path(os.environ.get("AUTHGATE_POLICIES") or "policies")
    return value


def _from_config(ctx: click.Context) -> Path | None:
    root = ctx.find_root().obj
    if not isinstance(root, Context) or not root.config_path:
        return None
    return Path(root.settings.policy.path)


policies_option = click.option(
    "--policies",
    "policies_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    callback=_configured_dir,
    show_default="policy.path of --config, else $AUTHGATE_POLICIES, else policies",
    help="Policy directory.",
)


def _load(policies_dir: Path, *, announce: bool = True) -> PolicySet:
    """Load or exit 1 with every problem listed; name the directory used."""
    if announce:
        click.echo(f"policy directory: {policies_dir}")
    try:
        return load_policy_set(policies_dir)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1) from exc


def _run_tests(ps: PolicySet, policies_dir: Path, *, verbose: bool) -> bool:
    """Run the policy test tables; print per case when verbose. True when all pass."""
    try:
        results = run_cases(ps, policies_dir / "tests")
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        return False
    for result in results:
        if verbose or not result.passed:
            status = "PASS" if result.passed else "FAIL"
            detail = f": {result.message}" if result.message else ""
            click.echo(f"{status} {result.case.source} {result.case.name}{detail}")
    failed = sum(not r.passed for r in results)
    for rule_id in uncovered_rules(ps, results):
        click.echo(f"warning: no policy test expects rule {rule_id}", err=True)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    return failed == 0


@click.group("policy")
def policy_group() -> None:
    """Check, approve, explain and test the authentication policies."""


@policy_group.command("check")
@policies_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def check_command(policies_dir: Path, strict: bool) -> None:
    """Validate the policy set; print its digest, warnings and approval status."""
    ps = _load(policies_dir)
    for warning in ps.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"ok: {len(ps.rules)} rules in {len(ps.files)} files, digest {ps.digest}")
    try:
        found = approval.latest_approval_for(policies_dir, ps.digest)
    except PolicyError as exc:
        click.echo(f"error: {'; '.join(exc.problems)}", err=True)
        raise SystemExit(1) from exc
    if found is None:
        click.echo("approval: NOT approved (run `authgate policy approve` after review)")
    else:
        click.echo(f"approval: approved by {found.reviewer} at {found.approved_at.isoformat()}")
    if strict and ps.warnings:
        raise SystemExit(1)


@policy_group.command("approve")
@policies_option
@click.option("--reviewer", required=True, help="Who reviewed the change.")
@click.option("--note", default="", help="Why it was approved (ticket, summary).")
@click.option("--since", "since_text", default="30d", show_default=True,
              help="With --config: the period whose preview summary the approval stores.")
@click.pass_context
def approve_command(ctx: click.Context, policies_dir: Path, reviewer: str, note: str,
                    since_text: str) -> None:
    """Record approval of the current digest; refused when invalid or a policy test fails.
    With a configuration, the approval also stores the preview's summary (issue 19)."""
    period = parse_duration(since_text)
    if period is None:
        raise click.BadParameter(f"'{since_text}' is not a duration like 30d or 12h",
                                 param_hint="--since")
    ps = _load(policies_dir)
    if not _run_tests(ps, policies_dir, verbose=False):
        click.echo("refused: policy tests fail", err=True)
        raise SystemExit(1)
    summary = None
    settings = _configured_settings(ctx)
    if settings is not None:
        now = datetime.now(UTC)
        try:
            summary = {"since": (now - period).isoformat(timespec="seconds"),
                       **_preview(settings, ps, since=now - period, samples=0).summary()}
        except StorageError as exc:  # a fresh install approves before `db upgrade`
            click.echo(f"note: no preview stored with the approval: the audit trail cannot "
                       f"be read ({exc.reason}); approve again after `authgate db upgrade` "
                       "to store one", err=True)
    try:
        record = approval.approve(
            policies_dir,
            reviewer=reviewer,
            note=note,
            now=datetime.now(UTC),
            expected_digest=ps.digest,
            summary=summary,
        )
    except PolicyError as exc:
        click.echo(f"error: {'; '.join(exc.problems)}", err=True)
        raise SystemExit(1) from exc
    click.echo(f"approved {record.digest} by {record.reviewer} at {record.approved_at.isoformat()}")
    if summary is not None:
        click.echo(f"preview stored: {summary['replayed']} decisions replayed, "
                   f"{summary['changed']} would change")


def _configured_settings(ctx: click.Context) -> Any:
    """The configuration's settings when ``--config``/``$AUTHGATE_CONFIG`` names one."""
    root = ctx.find_root().obj
    return root.settings if isinstance(root, Context) and root.config_path else None


@policy_group.command("test")
@policies_option
def test_command(policies_dir: Path) -> None:
    """Run the policy test tables in POLICIES/tests; exit 1 on any failure."""
    ps = _load(policies_dir)
    if not _run_tests(ps, policies_dir, verbose=True):
        raise SystemExit(1)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta:
    if value is None or value.strip() in ("0", "0s", "0m"):
        return timedelta(0)
    parsed = parse_duration(value)
    if parsed is None:
        raise click.BadParameter(f"'{value}' is not a duration like 10m or 2h")
    return parsed


@policy_group.command("explain")
@policies_option
@click.option("--user", default=None, help="Username; omit for an anonymous request.")
@click.option("--groups", default="", help="Comma-separated groups.")
@click.option(
    "--level",
    type=click.Choice([lv.value for lv in Level]),
    default=None,
    help="Level the session holds [default: none if anonymous, else password].",
)
@click.option("--ip", default=None, help="Client IP address.")
@click.option("--url", required=True, help="Absolute URL requested.")
@click.option("--method", default="GET", show_default=True)
@click.option("--at", "at_text", default=None, help="ISO 8601 time with offset [default: now].")
@click.option(
    "--auth-age", callback=_duration, default=None, help="Time since the level was proven."
)
@click.option("--idle", callback=_duration, default=None, help="Time since the previous request.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain_command(
    policies_dir: Path,
    user: str | None,
    groups: str,
    level: str | None,
    ip: str | None,
    url: str,
    method: str,
    at_text: str | None,
    auth_age: timedelta,
    idle: timedelta,
    as_json: bool,
) -> None:
    """Show the decision for a request and why each earlier rule did not match."""
    ps = _load(policies_dir, announce=not as_json)
    try:
        at = parse_instant(at_text) if at_text else datetime.now(UTC)
        if ip:
            ipaddress.ip_address(ip)
        resource = resource_from_url(url, method)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    subject = make_subject(
        user=user,
        groups=frozenset(g.strip() for g in groups.split(",") if g.strip()),
        level=Level(level) if level else None,
        ip=ip,
        at=at,
        auth_age=auth_age,
        idle=idle,
    )
    result = explain(ps, subject, resource, at)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo("\n".join(result.lines()))


@policy_group.command("preview")
@policies_option
@click.option("--since", "since_text", default="30d", show_default=True,
              help="Replay the decisions of this period (a duration: 7d, 12h).")
@click.option("--samples", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Sample requests kept per group.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (the records are split by id range).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def preview_command(ctx: click.Context, policies_dir: Path, since_text: str, samples: int,
                    jobs: int, as_json: bool) -> None:
    """Replay the audited /verify decisions of the period under POLICIES (the pending set)
    and show whose access would change: who loses it, who needs a step-up, who gains it,
    and who holds no device for a level a rule raises (readiness)."""
    period = parse_duration(since_text)
    if period is None:
        raise click.BadParameter(f"'{since_text}' is not a duration like 30d or 12h",
                                 param_hint="--since")
    ps = _load(policies_dir, announce=not as_json)
    report = _preview(ctx.find_root().obj.settings, ps, since=datetime.now(UTC) - period,
                      samples=samples, jobs=jobs)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo("\n".join(report.lines()))


def _preview(settings: Any, ps: PolicySet, *, since: datetime, samples: int,
             jobs: int = 1) -> PreviewReport:
    """Stream the period's verify records from the audit store (keyset batches: flat
    memory; ``jobs`` id ranges in forked workers, merged as one job would report them) into
    the pure replay, then read the credential store for readiness."""
    from authgate.audit.parallel import collector_paused, id_spans, parallel_map
    from authgate.composition.audit import build_audit_store
    from authgate.composition.credentials import build_credential_store, factor_params
    from authgate.credentials.webauthn import meets_policy
    from authgate.policy.preview_run import replay_span, with_readiness
    from authgate.storage.engine import make_engine
    from authgate.storage.readonly import read_only_engine

    url = settings.storage.url
    engine = read_only_engine(url) or make_engine(url)
    try:
        store = build_audit_store(engine)
        spans = id_spans(store, since=since, until=None, jobs=jobs)

        def job(span: tuple[int, int | None]) -> PreviewPart:
            return replay_span(store, ps, since=since, span=span,
                               batch=settings.audit.batch_size, samples=samples)

        with collector_paused():
            parts = parallel_map(job, spans, jobs=len(spans))
        report = PreviewReport.of(ps.digest, merge_parts(parts, samples=samples))
        params = factor_params(settings, ps)  # the pending set's attestation policy
        return with_readiness(report, build_credential_store(engine),
                              meets=lambda row: meets_policy(row, params))
    finally:
        engine.dispose()
