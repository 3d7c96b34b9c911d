"""The sessions of one loaded model: a small LRU, so several clients keep their prompt caches.

Every session shares the model's weights and has its own KV cache
(:meth:`~anechat.engines.base.Engine.open_session`). A request goes to the session
whose cache reuses the most of its prompt (:meth:`Session.reusable_tokens`), as long
as that session would keep at least half of what it holds: a conversation that grew,
or one whose last answer was regenerated. A prompt that no session fits that well
gets a session of its own: a new one while there are fewer than ``size``, else the
least recently used one, whose cache it overwrites. An engine that cannot open more
sessions (Core ML: the model's state is its cache) keeps one, shared by everyone.

The half rule bounds what a wrong guess costs: a prompt repeated after an answer longer
than itself opens a new session and prefills that (short) prompt again; another
conversation sharing a long system prompt takes a session over and drops at most as
many tokens as that system prompt holds.
"""

from __future__ import annotations

from typing import Sequence

from anechat.engines.base import Engine, Message, Session

Prompt = Sequence[Message | dict] | Sequence[int]


class SessionLRU:
    """Up to ``size`` sessions of one model, most recently used last. Engine thread only."""

    def __init__(self, engine: Engine, first: Session, size: int) -> None:
        self.engine = engine
        self.size = max(1, size)
        self.sessions: list[Session] = [first]

    def pick(self, prompt: Prompt) -> Session:
        """The session to answer ``prompt`` on, now the most recently used."""
        chosen = self._fitting(prompt) or self._fresh() or self.sessions[0]
        self.sessions.remove(chosen)
        self.sessions.append(chosen)
        return chosen

    def _fitting(self, prompt: Prompt) -> Session | None:
        """The session reusing the most of ``prompt`` while keeping half its cache (ties: the most recent)."""
        best, best_reuse = None, -1
        for session in self.sessions:
            reuse = session.reusable_tokens(prompt)
            if 2 * reuse >= session.cached_tokens and reuse >= best_reuse:
                best, best_reuse = session, reuse
        return best

    def _fresh(self) -> Session | None:
        """A new session while there is room (None when full or the engine has one state)."""
        if len(self.sessions) >= self.size:
            return None
        session = self.engine.open_session()
        if session is None:
            self.size = 1
            return None
        self.sessions.append(session)
        return session
