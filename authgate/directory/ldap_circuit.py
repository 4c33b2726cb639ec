"""The service-bind circuit: authgate never locks its own service account (issue 15 item 1).

Every login, readiness probe and start-up needs the service account. AD counts each refused
bind toward ``lockoutThreshold`` (MS-ADTS 3.1.1.5.3), so a mistyped service password retried
by every probe locks the account every login depends on. The circuit remembers, in a store
shared by every worker and instance, what AD answered for each password *fingerprint* (an
HMAC of the password under a server key, RFC 2104; never the password):

* unknown fingerprint: exactly one caller gets the trial and binds; the others wait for its
  verdict (``BUSY``), then follow it;
* refused: no bind is sent with that password again. The circuit stays open until the
  configured password changes (the ``bind_password_file`` is re-read before every new
  service connection) or an operator runs ``authgate directory reset-service-bind``;
* accepted: binds go ahead freely. A later refusal (the password was changed in AD) opens
  the circuit at once; only binds already in flight can add to AD's count.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from authgate.core.clock import Clock, SystemClock
from authgate.core.errors import DirectoryUnavailable
from authgate.storage.interfaces import ServiceBindStore
from authgate.storage.service_bind_rows import (
    BindClaim,
    BindState,
    ClaimVerdict,
    ServiceBindRow,
)

log = logging.getLogger("authgate.directory.ldap")
T = TypeVar("T")
#: a trial not settled within this long is taken as abandoned (its process died mid-bind)
TRIAL_LEASE = timedelta(seconds=30)
#: how long a caller waits for another process's trial before answering "unavailable"
TRIAL_WAIT_SECONDS = 3.0


class ServiceBindRefused(DirectoryUnavailable):
    """AD refused the service account's password; the circuit holds further binds."""

    reason = "service_bind_refused"

    def __init__(self, *, code: str, detail: str) -> None:
        self.code = code
        super().__init__(
            f"AD refused the service account password (data {code}: {detail}); no bind is "
            "sent with this password again: fix the password (or its file) or run "
            "`authgate directory reset-service-bind`")


class ServiceBindPending(DirectoryUnavailable):
    """Another process is trying this service password right now."""

    reason = "service_bind_pending"


class BindRefusedByAd(Exception):
    """Raised by the bind callable: AD answered invalidCredentials (result 49)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class ServiceBindChange:
    """What the circuit tells the audit trail: ``refused``, ``accepted`` or ``reset``."""

    outcome: str
    bind_dn: str
    code: str = ""
    detail: str = ""


Notify = Callable[[ServiceBindChange], None]


class ServiceBindCircuit:
    """Guards every service bind; ``store`` is shared by every process that binds."""

    def __init__(self, *, store: ServiceBindStore, key: bytes, clock: Clock | None = None,
                 notify: Notify | None = None, wait_seconds: float = TRIAL_WAIT_SECONDS) -> None:
        self._store = store
        self._key = key
        self._clock = clock or SystemClock()
        self._notify = notify or (lambda _change: None)
        self._wait = wait_seconds

    def fingerprint(self, bind_dn: str, password: str) -> str:
        message = bind_dn.lower().encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def bind(self, *, bind_dn: str, password: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` (one service bind) only when the circuit allows it.
        Raises ``ServiceBindRefused``, ``ServiceBindPending`` or what ``attempt`` raises."""
        fp = self.fingerprint(bind_dn, password)
        claim = self._claim(bind_dn, fp)
        if claim.verdict is ClaimVerdict.REFUSED and claim.row is not None:
            raise ServiceBindRefused(code=claim.row.code, detail=claim.row.detail)
        if claim.verdict is ClaimVerdict.BUSY:
            raise ServiceBindPending("another process is verifying the service password")
        try:
            result = attempt()
        except BindRefusedByAd as refused:
            self._settle(bind_dn, fp, BindState.REFUSED, refused.code, refused.detail)
            log.error("service bind refused by AD (data %s): circuit open", refused.code)
            self._notify(ServiceBindChange("refused", bind_dn, refused.code, refused.detail))
            raise ServiceBindRefused(code=refused.code, detail=refused.detail) from None
        except BaseException:
            if claim.verdict is ClaimVerdict.TRIAL:  # no verdict from AD: let another try
                self._store.release(bind_dn=bind_dn, fingerprint=fp)
            raise
        if claim.verdict is ClaimVerdict.TRIAL:
            self._settle(bind_dn, fp, BindState.OK, "", "")
            self._notify(ServiceBindChange("accepted", bind_dn))
        return result

    def refused(self, bind_dn: str, password: str) -> ServiceBindRow | None:
        """The refusal on record for this password, if any (no bind is sent)."""
        fp = self.fingerprint(bind_dn, password)
        return next((r for r in self._store.refused(bind_dn) if r.fingerprint == fp), None)

    def reset(self, bind_dn: str) -> int:
        """Forget every verdict for ``bind_dn`` (the operator fixed AD or the password)."""
        removed = self._store.reset(bind_dn)
        self._notify(ServiceBindChange("reset", bind_dn, detail=f"{removed} record(s) removed"))
        return removed

    def _claim(self, bind_dn: str, fp: str) -> BindClaim:
        deadline = time.monotonic() + self._wait
        while True:
            claim = self._store.claim(bind_dn=bind_dn, fingerprint=fp, now=self._clock.now(),
                                      lease=TRIAL_LEASE)
            if claim.verdict is not ClaimVerdict.BUSY or time.monotonic() >= deadline:
                return claim
            time.sleep(0.05)

    def _settle(self, bind_dn: str, fp: str, state: BindState, code: str, detail: str) -> None:
        self._store.settle(bind_dn=bind_dn, fingerprint=fp, state=state, code=code,
                           detail=detail, now=self._clock.now())


class MemoryServiceBindStore:
    """A process-local ``ServiceBindStore``: for a directory built without the database
    (``authgate directory check --url ...``, tests). It still holds every thread to one
    AD failure per password; composition gives the gateway the shared SQL store."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], ServiceBindRow] = {}
        self._lock = threading.Lock()

    def claim(self, *, bind_dn: str, fingerprint: str, now: datetime,
              lease: timedelta) -> BindClaim:
        with self._lock:
            row = self._rows.get((bind_dn, fingerprint))
            if row is not None and row.state is BindState.OK:
                return BindClaim(ClaimVerdict.BIND, row)
            if row is not None and row.state is BindState.REFUSED:
                return BindClaim(ClaimVerdict.REFUSED, row)
            if row is not None and row.lease_until > now:
                return BindClaim(ClaimVerdict.BUSY, row)
            self._rows[(bind_dn, fingerprint)] = ServiceBindRow(
                bind_dn, fingerprint, BindState.TRYING, "", "", now, now + lease)
            return BindClaim(ClaimVerdict.TRIAL)

    def settle(self, *, bind_dn: str, fingerprint: str, state: BindState, code: str,
               detail: str, now: datetime) -> None:
        with self._lock:
            self._rows[(bind_dn, fingerprint)] = ServiceBindRow(
                bind_dn, fingerprint, state, code, detail, now, now)

    def release(self, *, bind_dn: str, fingerprint: str) -> None:
        with self._lock:
            row = self._rows.get((bind_dn, fingerprint))
            if row is not None and row.state is BindState.TRYING:
                del self._rows[(bind_dn, fingerprint)]

    def refused(self, bind_dn: str) -> list[ServiceBindRow]:
        with self._lock:
            return [r for (dn, _), r in self._rows.items()
                    if dn == bind_dn and r.state is BindState.REFUSED]

    def reset(self, bind_dn: str) -> int:
        with self._lock:
            keys = [k for k in self._rows if k[0] == bind_dn]
            for k in keys:
                del self._rows[k]
            return len(keys)


def local_circuit() -> ServiceBindCircuit:
    """A circuit for one process, keyed with a random key (nothing outlives the process)."""
    return ServiceBindCircuit(store=MemoryServiceBindStore(), key=secrets.token_bytes(32))


__all__ = ["BindRefusedByAd", "MemoryServiceBindStore", "ServiceBindChange", "ServiceBindCircuit",
           "ServiceBindPending", "ServiceBindRefused", "local_circuit"]
