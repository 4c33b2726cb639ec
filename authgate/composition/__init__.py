"""The composition root: builds every store, key ring, signer, sink, directory and
regulator from the settings, once. Nothing else constructs a backend.
"""
from __future__ import annotations
