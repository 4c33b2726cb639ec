"""Builds the regulator from settings: the one place that picks the regulation backend.

Thresholds come from the policy set, re-read on every attempt (``policies.current``), so an
approved policy reload applies at once; AD's lockout policy comes from the directory.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from authgate.core.errors import AuthgateError
from authgate.core.keys import derive_subkey
from authgate.regulation import Regulator
from authgate.regulation.adpolicy import AdLockoutSource, lockout_margin
from authgate.regulation.regulator import StoreRegulator
from authgate.regulation.timing import Floor
from authgate.storage.sql_regulation import SqlRegulationStore  # also registers its tables

_log = logging.getLogger("authgate.regulation")


def build_regulator(settings: Any, *, engine: Any, policies: Any, clock: Any, audit: Any,
                    directory: Any, floor: Floor | None = None) -> Regulator:
    secret = settings.secrets.session_key
    # Without a configured secret (demo only) a per-process key: repeats are still found
    # within one process, and nothing keyed outlives it.
    key = derive_subkey(secret.reveal() if secret is not None else secrets.token_hex(32),
                        b"regulation")
    ad = active_directory(directory)
    regulator = StoreRegulator(
        store=SqlRegulationStore(engine),
        regulation=lambda: policies.current.settings.regulation,
        ad=AdLockoutSource(getattr(ad, "domain_lockout_policy", None), clock=clock),
        clock=clock, audit=audit, key=key, canonical=canonical_names(ad), floor=floor)
    log_margin(ad, policies.current.settings.regulation)
    return regulator


def active_directory(directory: Any) -> Any:
    """The directory that binds to AD: a composite (break-glass file beside AD) exposes it
    as ``primary``. Its lockout policy and login-name forms govern every AD account."""
    seen = 0
    while getattr(directory, "primary", None) is not None and seen < 8:
        directory, seen = directory.primary, seen + 1
    return directory


def canonical_names(directory: Any) -> Callable[[str], str]:
    """AD accepts ``alice``, ``alice@city.test`` and ``CITY\\alice`` for one account: they
    must share one counter and one AD budget, or each spelling would get its own."""
    ldap = getattr(directory, "settings", None)
    if ldap is None or not hasattr(ldap, "upn_suffix"):
        return lambda name: name.strip().lower()
    from authgate.directory.ldap_states import parse_login_name

    def canonical(name: str) -> str:
        parsed = parse_login_name(name, upn_suffix=ldap.upn_suffix,
                                  netbios_domain=ldap.netbios_domain)
        return parsed or name.strip().lower()
    return canonical


def log_margin(directory: Any, regulation: Any) -> None:
    """Start-up check (issue 7 §2): never fatal here, the AD guard clamps at run time anyway;
    ``authgate check-config`` is where an error fails."""
    try:
        margin = lockout_margin(directory, regulation)
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
