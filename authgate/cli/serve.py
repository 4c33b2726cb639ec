"""``authgate serve``: the gateway as two gunicorn pools under one supervising process.

Forward auth and the portal do not share workers (issue 15 item 7). A refused login is
padded to the failure floor (``regulation/timing.py``) and so holds whatever serves it for
tens of milliseconds; with one pool, about 60 refusals a second made ``/verify`` 100x slower.

- the **verify pool** (``--verify-bind``, sync workers) runs ``create_verify_app()``:
  ``/verify``, ``/healthz``, ``/readyz``, keys. nginx sends only its ``auth_request``
  subrequests there (``deploy/nginx/authgate.conf.template``, upstream ``authgate_verify``);
- the **portal pool** (``--bind``, gthread workers) runs ``create_app()``: sign-in and the
  consoles. A padded refusal sleeps in one of its threads, not in a whole worker, and the
  pool runs at the lowest CPU priority (``--portal-nice``, default 19) so a flood of logins
  cannot starve forward auth of the cores either (measured: docs/deployment.md).

Both get the configuration file as an absolute ``$AUTHGATE_CONFIG`` (issue 15 item 3). The
supervisor forwards SIGTERM, SIGINT, SIGQUIT and SIGHUP to both masters and, when one pool
stops, stops the other and exits with its status: a half-running gateway is not left behind.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from authgate.cli.reload_guard import reload_problems

if TYPE_CHECKING:  # the package imports this module while it registers the commands
    from authgate.cli.context import Context

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
#: gunicorn's hooks: child_exit marks a worker's metric files dead (gunicorn_hooks.py)
HOOKS = "python:authgate.cli.gunicorn_hooks"
#: The verify pool's limit on one header line. nginx forwards lines up to its 8 KB buffers
#: (a request target becomes X-Original-URI) and joins several Cookie headers into one
#: (``large_client_header_buffers 4 8k``: up to 32 KB); gunicorn's default 8190 answered
#: those with 431, which ``auth_request`` turns into an unaudited 500 (outside test of
#: issue 20). Above what any proxy in docs/deployment.md forwards, still bounded.
VERIFY_FIELD_LIMIT = 65536


@dataclass(frozen=True)
class Pool:
    """One gunicorn instance of the gateway."""

    name: str
    bind: str
    workers: int
    app: str
    threads: int = 0  # 0: sync workers; more: gthread workers with that many threads
    nice: int = 0
    field_limit: int = 8190  # gunicorn's default (--limit-request-field_size)

    def argv(self, *, access_log: str) -> list[str]:
        args = [sys.executable, "-m", "gunicorn", "--name", f"authgate-{self.name}",
                "--bind", self.bind, "--workers", str(self.workers), "--no-control-socket",
                "--config", HOOKS, "--access-logfile", access_log,
                "--limit-request-field_size", str(self.field_limit)]
        if self.threads:
            args += ["--worker-class", "gthread", "--threads", str(self.threads)]
        else:
            args += ["--worker-class", "sync"]
        return [*args, self.app]


@click.command("serve")
@click.option("--bind", default="127.0.0.1:9091", show_default=True,
              help="The portal pool: sign-in, consoles (nginx: upstream authgate).")
@click.option("--verify-bind", default="127.0.0.1:9092", show_default=True,
              help="The forward-auth pool: /verify only (nginx: upstream authgate_verify).")
@click.option("--workers", default=2, show_default=True, help="Portal worker processes.")
@click.option("--threads", default=64, show_default=True,
              help="Threads per portal worker (a padded refusal sleeps in one).")
@click.option("--verify-workers", default=2, show_default=True,
              help="Verify worker processes (sync; about one per core).")
@click.option("--portal-nice", default=19, show_default=True,
              type=click.IntRange(0, 19), help="CPU niceness of the portal pool.")
@click.option("--access-logfile", default="-", show_default=True)
@click.pass_obj
def serve_command(obj: Context, bind: str, verify_bind: str, workers: int, threads: int,
                  verify_workers: int, portal_nice: int, access_logfile: str) -> None:
    """Run the gateway under gunicorn: a verify pool and a portal pool (production)."""
    _ = obj.settings  # fail fast, with readable errors, before any worker tries
    _require_current_schema(obj.settings.storage.url)
    pools = [Pool("verify", verify_bind, verify_workers, "authgate.web:create_verify_app()",
                  field_limit=VERIFY_FIELD_LIMIT),
             Pool("portal", bind, workers, "authgate.web:create_app()",
                  threads=max(threads, 1), nice=portal_nice)]
    env = dict(os.environ)
    if obj.config_path:
        env["AUTHGATE_CONFIG"] = obj.config_path
    sys.exit(supervise(pools, env=env, access_log=access_logfile))


def supervise(pools: Sequence[Pool], *, env: Mapping[str, str], access_log: str) -> int:
    """Start every pool, forward signals, and return when the first one ends (the others
    are then stopped)."""
    children: list[subprocess.Popen[bytes]] = []
    forward = forwarder(children, config_path=env.get("AUTHGATE_CONFIG"))
    for signum in FORWARDED:
        signal.signal(signum, forward)
    metric_dirs = [metrics_dir(pool.name) for pool in pools]
    try:
        for pool, directory in zip(pools, metric_dirs, strict=True):
            children.append(subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                pool.argv(access_log=access_log), stdin=subprocess.DEVNULL,
                env={**env, "PROMETHEUS_MULTIPROC_DIR": directory},
                preexec_fn=_niceness(pool.nice)))  # noqa: PLW1509 - single-threaded here
        code = _first_exit(children)
    finally:
        for child in children:
            _stop(child)
        for directory in metric_dirs:
            shutil.rmtree(directory, ignore_errors=True)
    return code


def metrics_dir(pool: str) -> str:
    """A fresh, private (0700) directory for one gunicorn master's metric files: values
    left by an earlier start would otherwise be summed into this one's (prometheus-client
    multiprocess mode wants an empty directory per start)."""
    return tempfile.mkdtemp(prefix=f"authgate-metrics-{pool}-")


def forwarder(children: Sequence[Any], *, config_path: str | None
              ) -> Callable[[int, FrameType | None], None]:
    """The supervisor's signal handler: every signal goes on to both masters, except a
    SIGHUP that new workers would not survive (``reload_guard``): that one is refused and
    reported, and the running workers keep serving the last good state."""
    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            problems = reload_problems(config_path)
            if problems:
                for problem in problems:
                    print(f"authgate serve: reload refused, the running workers keep "
                          f"serving: {problem}", file=sys.stderr, flush=True)
                return
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
    return forward


def _niceness(increment: int) -> Callable[[], object] | None:
    if not increment:
        return None
    return lambda: os.nice(increment)


def _first_exit(children: Sequence[subprocess.Popen[bytes]]) -> int:
    pids = {child.pid: child for child in children}
    while True:
        pid, status = os.wait()  # retried after a forwarded signal (PEP 475)
        if pid in pids:
            code = pids[pid].returncode = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 1  # killed by a signal: not a clean stop


def _stop(child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _require_current_schema(url: str) -> None:
    """Refuse to start on a database ``authgate db upgrade`` has not brought to the head
    revision: the workers would answer every sign-in and ``/verify`` with a storage error
    (fail closed, but silently not working; found by the outside test of issue 15). Exits
    2 with what to run."""
    from authgate.storage.engine import current_revision, head_revision, make_engine

    try:
        engine = make_engine(url)
        try:
            found = current_revision(engine)
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any reason the database cannot be read
        click.echo(f"error: cannot read the database ({type(exc).__name__}): check "
                   "storage.url and that the database is up", err=True)
        raise SystemExit(2) from exc
    wanted = head_revision(url)
    if found != wanted:
        click.echo(f"error: the database is at revision {found or 'none (empty)'}, this "
                   f"authgate needs {wanted}: run `authgate db upgrade` first", err=True)
        raise SystemExit(2)
