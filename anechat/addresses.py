"""Which host names and addresses stay on this machine: the one rule that ``anechat serve``
and ``anechat api`` use to decide what may listen without further protection."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1`` (brackets and a trailing dot allowed)."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """An address that listens on every interface."""
    return host.strip().strip("[]") in ("", "0.0.0.0", "::")
