"""Signing in: the password step (ban check, directory bind, attempt recorded, session at
level ``password``) and the password change.
"""
from __future__ import annotations
