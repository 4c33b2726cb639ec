"""Builds the regulator from settings: the one place that picks the regulation backend.

Thresholds come from the policy set, re-read on every attempt (``policies.current``), so an
approved policy reload applies at once; AD's lockout policy comes from the directory.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from authgate.composition.directory import active_directory, ad_roles
from authgate.core.errors import AuthgateError, DirectoryUnavailable
from authgate.core.keys import derive_subkey
from authgate.directory import Directory, LockoutPolicySource, LoginNameCanonicaliser
from authgate.regulation import Regulator
from authgate.regulation.adpolicy import AdLockoutSource, lockout_margin
from authgate.regulation.regulator import PasswordStamp, StoreRegulator, Vouching
from authgate.regulation.timing import Floor, seed_from
from authgate.regulation.verifier import PasswordVerifier
from authgate.storage.sql_regulation import SqlRegulationStore  # also registers its tables
from authgate.storage.sql_verifiers import SqlPasswordVerifierStore

_log = logging.getLogger("authgate.regulation")


def build_regulator(settings: Any, *, engine: Any, policies: Any, clock: Any, audit: Any,
                    directory: Any, floor: Floor | None = None) -> Regulator:
    secret = settings.secrets.session_key
    # Without a configured secret (demo only) a per-process key: repeats are still found
    # within one process, and nothing keyed outlives it.
    root_secret = secret.reveal() if secret is not None else secrets.token_hex(32)
    key = derive_subkey(root_secret, b"regulation")
    ad = ad_roles(directory)
    lockout = ad.lockout_policy
    regulator = StoreRegulator(
        store=SqlRegulationStore(engine),
        regulation=lambda: policies.current.settings.regulation,
        ad=AdLockoutSource(lockout.domain_lockout_policy if lockout else None, clock=clock),
        clock=clock, audit=audit, key=key, canonical=canonical_names(ad.login_names),
        floor=floor, vouching=Vouching(
            PasswordVerifier(store=SqlPasswordVerifierStore(engine), clock=clock,
                             pepper=derive_subkey(root_secret, b"password-verifier"),
                             earlier_peppers=tuple(
                                 derive_subkey(older, b"password-verifier")
                                 for older in (secret.older() if secret is not None else ()))),
            password_stamp(directory)))
    log_margin(lockout, policies.current.settings.regulation)
    return regulator


def password_stamp(directory: Directory) -> PasswordStamp:
    """``pwdLastSet`` as the directory says it now (a search as the service account, never
    a user bind, so it costs the account nothing in AD); None when the account may not sign
    in (``lookup`` gives None for disabled, locked, expired) or the directory is down."""
    def stamp(name: str) -> str | None:
        try:
            identity = directory.lookup(name)
        except DirectoryUnavailable:
            return None
        return identity.password_set_at if identity is not None else None
    return stamp


#: the seed over the slowest dummy verification (see ``seed_failure_floor``)
SEED_MARGIN = 2.0


def seed_failure_floor(regulator: Regulator, directory: Any) -> None:
    """A portal worker's failure floor before its first real failure (issue 15 item 9):
    twice the slowest of three dummy verifications of the directory that binds. Never
    fatal: with the directory down, the floor stays unseeded until the first real failure."""
    from authgate.directory.ldap import LdapDirectory  # the one directory with a probe

    if not isinstance(regulator, StoreRegulator):
        return
    bound = active_directory(directory)

    def probe() -> None:
        if isinstance(bound, LdapDirectory):
            bound.timing_probe()
            return
        try:  # the file directory verifies an unknown name against a dummy argon2id hash
            bound.authenticate(username=f"timing-probe-{secrets.token_hex(8)}",
                               password=secrets.token_urlsafe(24))
        except AuthgateError:
            return

    try:
        seed = seed_from(regulator.floor, lambda: regulator.rehearse_failure(probe))
    except AuthgateError as exc:
        _log.warning("failure floor not seeded at start-up (directory: %s)", exc)
        return
    # A refused bind for a DN no account has is cheaper for a DC than a wrong password for
    # a real account (which updates badPwdCount): on Samba 19-22 ms against 38 ms in a
    # loaded CI run. Twice the slowest probe keeps the first unknown names no faster than
    # a real wrong password; from the tenth real failure on, real binds alone decide.
    regulator.floor.seed(seed * SEED_MARGIN)
    _log.info("failure floor seeded at %.1f ms", seed * SEED_MARGIN * 1000)


def canonical_names(names: LoginNameCanonicaliser | None) -> Callable[[str], str]:
    """AD accepts ``alice``, ``alice@city.test`` and ``CITY\\alice`` for one account: they
    must share one counter and one AD budget, or each spelling would get its own."""
    if names is None:
        return lambda name: name.strip().lower()
    return names.canonical_login_name


def log_margin(source: LockoutPolicySource | None, regulation: Any) -> None:
    """Start-up check (issue 7 §2): never fatal here, the AD guard clamps at run time anyway;
    ``authgate check-config`` is where an error fails."""
    try:
        margin = lockout_margin(source, regulation)
    except AuthgateError as exc:
        _log.warning("AD lockout policy not read at start-up (read at first login): %s", exc)
        return
    if margin is None:
        return
    for message in margin.messages:
        level = logging.ERROR if margin.severity == "error" else logging.WARNING
        if margin.severity == "ok":
            level = logging.INFO
        _log.log(level, "regulation: %s", message)
