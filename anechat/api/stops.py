"""Stop strings over streamed text: text is handed on as soon as it cannot be the start
of a stop string, and everything from the first stop string on is dropped."""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self._held = ""
        self.hit = False

    def feed(self, text: str) -> str:
        """The text that is safe to send now (held back: a possible stop string's start)."""
        if self.hit:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit = True
            self._held = ""
            return buffer[:cut]
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), 0, -1):
                if buffer.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """What was held back, once the generation is over without a stop string."""
        held, self._held = ("" if self.hit else self._held), ""
        return held
