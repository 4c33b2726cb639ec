"""Credentials, the stateful side of second factors: enrol, check and manage TOTP,
WebAuthn and recovery codes.

The checks themselves are pure (``authgate.factors``); this layer keeps their state (last
accepted TOTP step, WebAuthn challenges and sign counts, hashes), enforces single use with
conditional updates, and writes one audit record per outcome.
"""
from __future__ import annotations
