"""Imports coremltools without its import-time warnings (untested torch / scikit-learn
versions, the Core ML bridge that does not exist off macOS)."""

from __future__ import annotations

import logging


def import_coremltools():
    logger = logging.getLogger("coremltools")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import coremltools
    finally:
        logger.setLevel(old)
    return coremltools
