"""Noticing that the terminal is gone (an SSH link dropped, a tmux server killed).

The kernel sends SIGHUP to the terminal's foreground process group, but a process
started under another one (``make run``, some SSH wrappers) never gets it; its
terminal then reads end-of-file for ever, and Textual's input thread spins on it at
100% CPU. The app asks the terminal about itself once a second instead: a hung-up
terminal reports POLLHUP without any input being read.
"""

from __future__ import annotations

import os
import select


def is_terminal(fd: int = 0) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def terminal_hung_up(fd: int = 0) -> bool:
    """True once the terminal on ``fd`` has hung up (or the descriptor is gone)."""
    poll = getattr(select, "poll", None)
    if poll is None:  # Windows: no poll(); a closed console ends the process anyway
        return False
    poller = poll()
    poller.register(fd, select.POLLIN)  # hang-ups and errors are always reported
    try:
        events = poller.poll(0)
    except OSError:
        return True
    return any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in events)
