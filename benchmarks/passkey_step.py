"""Benchmark: a passkey sign-in (``PasskeyLogin.sign_in``) in process, on SQLite.

Not a test. Each measured sign-in is real: a challenge made by ``PasskeyLogin.options``, an
assertion signed by a software authenticator (``tests/credentials/soft_key.py``, outside
the timing), then ``sign_in``: the challenge, the credential, the signature, the directory
(file backend), the throttle, the session and the audit record. Prints the CPU time of
``sign_in`` alone (median and 90th percentile, ms) and, for one sign-in, SQLite's own trace
of its statements: how many transactions (BEGIN ... COMMIT) and how many writes.

Uses only ``options``/``sign_in`` and the registration ceremony, so the same file measures
an older checkout too (``PYTHONPATH=<checkout>``).

    .venv/bin/python benchmarks/passkey_step.py                 # 2,000 sign-ins
    .venv/bin/python benchmarks/passkey_step.py --sign-ins 500
"""
from __future__ import annotations

import argparse
import atexit
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: an older checkout can be measured

from sqlalchemy import event  # noqa: E402

from authgate.composition.root import Services, build_services  # noqa: E402
from authgate.core.values import RequestMeta  # noqa: E402
from authgate.directory.file import FileDirectory  # noqa: E402
from authgate.storage.engine import migrate  # noqa: E402
from authgate.storage.fastpath import connections_for  # noqa: E402
from tests.conftest import FAST_HASHER, make_settings  # noqa: E402
from tests.credentials.soft_key import SoftKey  # noqa: E402

META = RequestMeta(client_ip="192.0.2.7", user_agent="bench", request_id="b")


def build(work: Path) -> tuple[Services, SoftKey]:
    users = work / "users.yaml"
    FileDirectory(users, hasher=FAST_HASHER).add_user("alice", "alice's long password",
                                                      groups=["City-Staff"])
    settings = make_settings(work, users, webauthn={"passkey_sign_in": True})
    migrate(settings.storage.url)
    services = build_services(settings)
    key = SoftKey()
    options = json.loads(services.mfa.webauthn.begin_registration(
        key="r", username="alice", display_name="Alice"))
    services.mfa.webauthn.finish_registration(key="r", username="alice", name="Key",
                                              credential_json=key.register(options), meta=META)
    return services, key


def sign_in(services: Services, key: SoftKey) -> float:
    """One sign-in; the CPU seconds ``sign_in`` took."""
    handle = secrets.token_urlsafe(16)
    signed = key.assert_(json.loads(services.passkey_login.options(handle=handle)))
    began = time.process_time()
    services.passkey_login.sign_in(handle=handle, credential_json=signed, meta=META)
    return time.process_time() - began


def traced(services: Services, key: SoftKey) -> list[str]:
    """The first word of every statement one sign-in sent, on any connection."""
    statements: list[str] = []
    handle = secrets.token_urlsafe(16)
    signed = key.assert_(json.loads(services.passkey_login.options(handle=handle)))
    connections_for(services.engine).discard()  # reopened below, traced
    services.engine.pool.dispose()

    def trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))

    event.listen(services.engine, "connect", trace)
    services.passkey_login.sign_in(handle=handle, credential_json=signed, meta=META)
    event.remove(services.engine, "connect", trace)
    connections_for(services.engine).discard()
    services.engine.pool.dispose()
    return statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sign-ins", type=int, default=2000)
    parser.add_argument("--statements", action="store_true",
                        help="print one sign-in's statements in order")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="authgate-passkey-"))
    atexit.register(shutil.rmtree, work, True)  # after the audit log's own exit hook
    services, key = build(work)
    try:
        verbs = traced(services, key)
        for _ in range(50):  # warm: prepared statements, pools, imports
            sign_in(services, key)
        cpu = sorted(sign_in(services, key) for _ in range(args.sign_ins))
    finally:
        services.audit.close()
        services.engine.dispose()
    if args.statements:
        print(" ".join(verbs))
    writes = sum(v in ("INSERT", "UPDATE", "DELETE") for v in verbs)
    print(f"one sign-in: {verbs.count('BEGIN')} BEGIN, {verbs.count('COMMIT')} COMMIT, "
          f"{writes} writes, {len(verbs)} statements in all")
    print(f"{args.sign_ins} sign-ins: CPU per sign_in median "
          f"{statistics.median(cpu) * 1000:.2f} ms, p90 "
          f"{cpu[int(len(cpu) * 0.9)] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
