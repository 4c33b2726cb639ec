"""The base layer: shared values (levels, identities, resources, audit events), the error
tree, the clock and the secrets-at-rest box. Imports nothing above it.
"""
from __future__ import annotations
