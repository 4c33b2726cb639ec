"""Admin console use cases: enrolment codes, factor resets, ending sessions, lifting bans.
"""
from __future__ import annotations
