"""The audit event schema as data (docs/audit.md renders the same table).

``SCHEMA_VERSION`` changes when a field is added or its meaning changes; ``chain.
FORMAT_VERSION`` (stored per record as ``v``) when the canonical form changes. Event names
are ``area.action``; reason codes are lower_snake and never contain user input.
"""
from __future__ import annotations

from functools import lru_cache

SCHEMA_VERSION = 1

#: event → (what it records, outcomes it uses)
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "verify": ("one forward-auth decision (GET /verify), with rule id and policy digest",
               ("allow", "challenge", "deny", "error")),
    "login.password": ("the password step of a login", ("success", "failure", "error")),
    "login.totp": ("a TOTP second-factor check (RFC 6238)", ("success", "failure")),
    "login.webauthn": ("a WebAuthn assertion; once the key is known, the record names its "
                       "owner and (detail `credential`) its row id, a failure too",
                       ("success", "failure")),
    "login.recovery": ("a recovery-code login", ("success", "failure")),
    "password.change": ("a password change at the directory", ("success", "failure", "error")),
    "logout": ("the user signed out", ("success",)),
    "session.ended_by_user": ("the user ended one or all of their sessions", ("success",)),
    "redirect.refused": ("an unsafe return URL was refused (past "
                         "`server.refusal_records_per_minute` of one address: counted, the "
                         "next record's `unrecorded` says how many)", ("deny",)),
    "console.access": ("a visit to the admin or audit console refused, or sent to sign in or "
                       "step up (visits without a session: at most "
                       "`server.refusal_records_per_minute` records per address, then counted "
                       "in `unrecorded`)", ("deny", "challenge")),
    "policy.reload": ("a policy set loaded or rejected", ("success", "deny")),
    "login.passkey": ("a sign-in with a passkey alone (discoverable WebAuthn credential, user "
                      "verification), when enabled, with the key's owner and row id (detail "
                      "`credential`); an assertion that fails its checks is recorded as "
                      "`login.webauthn`", ("success", "failure", "error")),
    "login.break_glass": ("a break-glass account passed its password step (severity high)",
                          ("info",)),
    "login.factor": ("a second-factor attempt refused before it was checked: the per-user "
                     "throttle, or a typed code where the target needs a security key",
                     ("deny", "failure")),
    "login.next": ("the login flow refused a target the policy denies this user",
                   ("failure",)),
    "login.completed": ("a sign-in completed (any factor; once per session): the boundary "
                        "for \"failures since your last sign-in\"", ("success",)),
    "request.refused": ("a page request refused before any use case ran: a missing or "
                        "expired CSRF token, a malformed or oversized request; past "
                        "`server.refusal_records_per_minute` of one address they are counted "
                        "and the next record's `unrecorded` says how many", ("deny",)),
    "session.refresh": ("a session re-read its account from the directory (groups changed, "
                        "or the directory was down when due)", ("info", "error")),
    "session.revoked": ("a session ended because its password was changed or reset since "
                        "sign-in, or the account is disabled, locked, expired "
                        "or gone in the directory", ("deny",)),
    "enrol.code_issued": ("an admin issued an enrolment code (the code is never recorded)",
                          ("success",)),
    "enrol.code_redeemed": ("a user presented an enrolment code", ("success", "failure")),
    "enrol.code_revoked": ("an admin revoked an enrolment code", ("success", "failure")),
    "enrol.totp.start": ("a TOTP set-up began (inactive until confirmed)", ("info",)),
    "enrol.totp.confirm": ("a TOTP set-up confirmation failed", ("failure",)),
    "enrol.webauthn": ("a WebAuthn registration failed", ("failure",)),
    "enrol.refused": ("the enrolment rule refused to bind a factor (NIST 63B 6.1.2.1: a "
                      "security key needs an admin code or a fresh security-key login)",
                      ("failure",)),
    "factor.added": ("an authenticator was bound to an account (totp or webauthn)",
                     ("success",)),
    "factor.removed": ("an authenticator removed (by its owner or an admin, with reason); "
                       "the user's sessions end", ("success", "failure")),
    "factor.renamed": ("an authenticator renamed by its owner", ("success", "failure")),
    "factor.recovery_codes": ("recovery codes (re)generated; the old set stops working",
                              ("success",)),
    "admin.*": ("an administrator action (user, factor, session, enrolment code)",
                ("success", "failure", "deny")),
    "ban.*": ("a ban set, lifted or refusing a login (regulation)", ("info", "deny")),
    "keys.rotate": ("a key rotated (authgate keys rotate) or TOTP seeds re-encrypted",
                    ("success", "failure")),
    "audit.export": ("an auditor exported records (CLI or web), with the filter",
                     ("success",)),
    "audit.verify": ("a verification of the trail was run", ("success", "failure")),
    "audit.checkpoint": ("a signed checkpoint was written (copied to the SIEM)", ("info",)),
    "audit.witness": ("the witness (audit.witness) failed or recovered, once per outage",
                      ("error", "info")),
    "audit.restore": ("the database was restored from a backup (authgate restore), naming "
                      "the backup's newest checkpoint: verify --witness explains the "
                      "rollback", ("info",)),
    "audit.purge": ("records older than the retention age were removed", ("success",)),
    "audit.chain.close": ("a writer closed its chain at process exit", ("info",)),
    "directory.service_bind": ("AD refused or accepted the service account's password (the "
                               "circuit opened or closed), or an operator reset the circuit",
                               ("deny", "success")),
}

#: reason codes, by the component that writes them
REASONS: dict[str, str] = {
    # verify (policy decisions)
    "allowed": "a rule allowed the request", "bypass": "a public rule (no login needed)",
    "login_required": "no session, or not at the level the rule needs",
    "step_up": "a stronger factor is needed", "reauth_age": "the session is too old",
    "reauth_idle": "the session was idle too long", "denied_by_rule": "a deny rule matched",
    "default_deny": "no rule matched", "bad_request": "the proxy did not say what was asked",
    "control_character_in_header": "a control character in User-Agent or Cookie (refused)",
    "ambiguous_path": "a path that reads differently to authgate and the app (denied)",
    "unprotected_host": "the proxy asked about a host outside server.protected_domains",
    "storage_error": "the database failed (fail closed)",
    "internal_error": "an unexpected error (fail closed)",
    "error": "an error authgate raised without a finer reason (fail closed)",
    "config_invalid": "the configuration could not be used (fail closed)",
    "policy_invalid": "the policy set could not be used (fail closed)",
    "session_invalid": "the session could not be used (treated as none)",
    # verify detail ``report_only`` (rule:outcome, ...): what a report-only rule would have
    # answered; it never decides (docs/policies.md, Report-only rules)
    "would_allow": "a report-only rule matched and would have allowed",
    "would_step_up": "a report-only rule matched and would have asked to log in or step up",
    "would_deny": "a report-only rule matched and would have denied",
    # login
    "ok": "credentials accepted", "invalid_credentials": "wrong username or password",
    "account_disabled": "the account is disabled", "account_locked": "locked out",
    "account_expired": "the account has expired", "password_expired": "password expired",
    "password_must_change": "an administrator requires a new password",
    "logon_hours": "outside the account's logon hours",
    "logon_workstation": "not allowed from this workstation",
    "directory_unavailable": "no directory server answered",
    "directory_error": "the directory failed", "invalid_code": "wrong one-time code",
    "code_replayed": "a one-time code used twice", "code_expired": "the code expired",
    "invalid_recovery_code": "wrong recovery code", "webauthn_failed": "assertion refused",
    "recovery_code_reused": "a right recovery code that another request spent first (two "
                            "at once): counted as a failure",
    "password_change_rejected": "the directory refused the new password",
    "password_changed": "the password was just changed at the directory",
    "strong_factor_required": "a typed code was offered where the target needs a key",
    "csrf_failed": "the form's CSRF token was missing, expired or from elsewhere",
    "http_400": "a malformed request", "http_405": "a method the page does not take",
    "http_413": "a request body too large", "http_414": "a request line too long",
    "http_431": "request headers too large",
    "no_pending_change": "the password change page was used without sign-in asking for a change",
    "unknown_user": "no such account (no bind was sent)",
    "empty_password": "an empty password (no bind was sent)",
    "ambiguous_user": "the login name matched more than one account",
    "malformed_input": "a login name or password authgate refuses to send",
    "bind_interrupted": "the directory's answer to the bind was lost",
    "too_many_sids": "the account is in too many groups for a logon token",
    "password_ok": "the password was accepted (a session at level password)",
    "break_glass_used": "a break-glass account passed its password step",
    "totp_ok": "the TOTP code was accepted",
    "session_gone": "a right second factor for a session that ended meanwhile (signed out "
                    "or revoked): nothing recorded, the step is not spent",
    "recovery_code_used": "a recovery code was "
    "accepted and spent", "webauthn_up": "a security-key assertion with user presence",
    "webauthn_uv": "a security-key assertion with user verification",
    "account_unavailable": "a passkey whose account the directory no longer offers",
    "refused": "a genuine passkey refused: below the policy in force, or the user is "
               "throttled (detail `cause`: the precise reason)",
    # the service account (issue 15): authgate never locks it
    "service_bind_refused": "AD refused the service password; no bind is sent with it again "
                            "until it changes or an operator resets the circuit",
    "service_bind_accepted": "AD accepted a new service password (the circuit closed)",
    "service_bind_reset": "an operator reset the service-bind circuit",
    "service_bind_pending": "another process was verifying the service password",
    # regulation (brute force, AD lockout guard)
    "repeated_password": "a password already known to be wrong, tried again",
    "user_throttled": "too many failures for this account",
    "factor_throttled": "too many second-factor failures for the user in the window",
    "factor_banned": "second-factor attempts for the user are banned for a while",
    "ip_throttled": "too many failures from this address",
    "user_banned": "a ban on an account after too many failures",
    "user_ip_banned": "a ban on an account from one familiar address (smart lockout)",
    "ip_banned": "a ban on an address after too many failures",
    "ad_lockout_guard": "refused before AD would lock the account",
    "spray_source": "a ban on an address spraying passwords",
    "password_spray": "one password tried against many accounts",
    "operator_lift": "an operator lifted a ban",
    "operator_list": "an operator listed the bans",
    # WebAuthn (``factors.errors.WEBAUTHN_REASONS``) and passkeys
    "malformed": "the WebAuthn response could not be decoded",
    "wrong_ceremony": "a registration response for a sign-in, or the reverse",
    "challenge_mismatch": "not a live challenge this server issued for this ceremony: "
                          "expired, another's, used already, or taken first by a concurrent "
                          "copy of the assertion",
    "origin_mismatch": "the response came from another origin",
    "cross_origin": "made inside a cross-origin frame",
    "rp_id_mismatch": "made for another relying party",
    "user_not_present": "the authenticator saw no user presence",
    "user_not_verified": "user verification was required and missing",
    "unknown_credential": "a credential authgate does not know for this user",
    "user_handle_mismatch": "the credential belongs to another user",
    "user_handle_missing": "a passkey assertion that does not say whose it is (no "
                           "userHandle; WebAuthn §7.2 step 6)",
    "bad_signature": "the assertion signature does not verify",
    "bad_public_key": "the stored public key cannot be decoded",
    "sign_count_regressed": "the counter was not above the one stored when the sign-in "
                            "committed: possibly a cloned authenticator",
    "unsupported_algorithm": "the credential's key algorithm is not accepted",
    "bad_attestation": "the attestation statement does not verify",
    "aaguid_not_allowed": "an authenticator model outside the allow-list",
    "attestation_required": "the policy requires attestation: none or self attestation sent",
    "attestation_untrusted": "the policy requires attestation but no roots are configured",
    "webauthn_below_policy": "a verified key that does not meet the policy's attestation "
                             "rule: mfa, not phishing-resistant",
    "passkey_uv": "a passkey sign-in with user verification",
    "signed_in": "the browser arrived where it was going: the sign-in is complete",
    # enrolment codes and factors
    "unknown_code": "no such enrolment code", "other_users_code": "another user's code",
    "code_reused": "an enrolment code used twice", "code_revoked": "a revoked code",
    "code_refused": "an enrolment code refused", "totp_seeds": "TOTP seeds re-encrypted",
    "session_key_rotated": "a new session key signs; earlier ones still verify",
    "totp_key_rotated": "a new TOTP encryption key seals; earlier ones still open",
    "audit_key_rotated": "a new audit chain key; earlier ones still verify old records",
    "signing_key_rotated": "a new checkpoint signing key; retired public keys still trusted",
    "issued": "an enrolment code issued", "redeemed": "an enrolment code spent",
    "malformed_code": "an enrolment code that cannot be one (never looked up)",
    "revoked": "an enrolment code revoked", "not_live": "a revoke of a code already spent, "
    "revoked or expired", "pending": "a TOTP set-up waiting for its first code",
    "setup_expired": "a TOTP set-up confirmed after its pending secret's lifetime",
    "totp": "an authenticator app (TOTP) was bound", "webauthn": "a security key was bound",
    "renamed": "an authenticator renamed", "removed": "an authenticator removed",
    "reset": "an administrator removed every factor of the user",
    "regenerated": "a new set of recovery codes replaced the old one",
    "code_throttled": "too many wrong enrolment codes for the user: none is looked at",
    "webauthn_needs_code": "a security key without an admin code or a fresh key login",
    "login_not_fresh": "adding a factor needs a login at mfa or above in the last minutes",
    "no_enrolment_code": "a first factor without an admin code (or a first-enrolment network)",
    # portal and consoles
    "user_logout": "signed out by the user", "redirect_refused": "unsafe return URL",
    "auditor_role_missing": "not in an auditor group",
    "admin_role_missing": "not in an admin group",
    "admin_request": "an administrator ended a user's sessions",
    "suspected_compromise": "an administrator ended every session",
    "groups_changed": "the directory groups changed; the session follows",
    # policy
    "policy_loaded": "a new approved policy set is live",
    "policy_rejected": "a changed policy set was refused; the previous one stays",
    # audit trail
    "export_started": "an export began (recorded before the first byte)",
    "checkpoint_interval": "periodic checkpoint", "checkpoint_purge": "retention cut",
    "checkpoint_manual": "checkpoint on request", "retention": "retention purge",
    "process_exit": "the writer process exited cleanly",
    "intact": "audit.verify found no damage",
    # audit.verify failures use the damage kind as the reason (docs/audit.md)
    **{kind: f"audit.verify found damage: {kind}" for kind in (
        "altered", "forged", "missing", "reordered", "truncated", "head_cut",
        "chain_deleted", "unsealed", "unknown_key", "checkpoint_invalid", "wiped",
        "rolled_back", "checkpoint_deleted", "witness_invalid", "schema_altered", "unreadable")},
    "witness_write_failed": "a checkpoint could not be appended to audit.witness (once per "
                            "outage; the checkpoint is kept in the database)",
    "restored_from_backup": "authgate restore replaced the database by a backup; "
                            "checkpoints after the one named were rolled back",
    "witness_restored": "checkpoints reach audit.witness again after an outage",
}


#: Syslog severity (RFC 5424 §6.2.1: 2 critical, 3 error, 4 warning, 5 notice, 6
#: informational) as (event, outcome, reason, severity, why); ``*`` matches anything and
#: ``area.*`` every event of the area. A record takes the most severe row it matches, 6 when
#: none does: the event decides, not only the outcome (issue 16 item 7).
SEVERITIES: tuple[tuple[str, str, str, int, str], ...] = (
    ("*", "error", "*", 3, "authgate failed (closed)"),
    ("*", "deny", "*", 4, "a refusal"),
    ("*", "failure", "*", 4, "a failed check"),
    ("*", "challenge", "*", 5, "sent to sign in or step up"),
    ("audit.checkpoint", "*", "*", 5, "a signed checkpoint, kept outside the database"),
    ("login.break_glass", "*", "*", 4, "a break-glass account was used"),
    ("ban.spray", "*", "*", 4, "an address or password banned for spraying"),
    ("admin.factors_reset", "*", "*", 4, "an administrator reset a user's factors"),
    ("directory.service_bind", "*", "service_bind_refused", 3,
     "the service account's circuit opened: no directory search until it closes"),
    ("audit.verify", "failure", "*", 2, "the audit trail is damaged"),
)
#: a record no row matches
DEFAULT_SEVERITY = 6


def _matches(pattern: str, value: str) -> bool:
    return pattern in ("*", value) or (pattern.endswith(".*") and value.startswith(pattern[:-1]))


@lru_cache(maxsize=4096)
def severity(event: str, outcome: str, reason: str) -> int:
    """The syslog severity of a record (``SEVERITIES``; the SIEM sinks use it). Cached:
    a trail has a few hundred (event, outcome, reason) triples."""
    return min((level for ev, out, why, level, _ in SEVERITIES
                if _matches(ev, event) and _matches(out, outcome) and _matches(why, reason)),
               default=DEFAULT_SEVERITY)


def _severity_table() -> list[str]:
    lines = ["### Syslog severity", "| event | outcome | reason | severity | why |",
             "|---|---|---|---|---|"]
    lines += [f"| `{ev}` | {out} | {why} | {level} | {text} |"
              for ev, out, why, level, text in SEVERITIES]
    return lines + ["", f"A record takes the most severe row it matches ({DEFAULT_SEVERITY}, "
                        "informational, when none does); the number is RFC 5424's "
                        "(2 critical, 3 error, 4 warning, 5 notice)."]


def markdown() -> str:
    """The "Event types" and "Reason codes" sections of docs/audit.md, which are this
    output verbatim (``tests/audit/test_schema_doc.py`` compares them)."""
    lines = ["### Event types", "| event | records | outcomes |", "|---|---|---|"]
    lines += [f"| `{name}` | {what} | {', '.join(outcomes)} |"
              for name, (what, outcomes) in EVENTS.items()]
    lines += ["", "These tables are generated from `authgate/audit/catalog.py` "
              "(`python -m authgate.audit.catalog --markdown`); `tests/audit/` checks that "
              "every event and reason code the code writes is listed.", "",
              "### Reason codes", "| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {meaning} |" for code, meaning in REASONS.items()]
    lines += ["", *_severity_table()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m authgate.audit.catalog --markdown")
    sys.stdout.write(markdown())
