"""Forward-auth access decisions: the request's resource from proxy headers, the
session's subject, the policy's answer, the next step a session lacks, return URLs and the
signed identity header.
"""
from __future__ import annotations
