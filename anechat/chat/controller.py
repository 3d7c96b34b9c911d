"""A UI-agnostic chat: the conversation, its settings, and the engine that answers it.

Used by the line-based ``anechat chat``, the Textual app and the compare view.
Every method may block (loading a model, generating): UIs call them from a
worker thread. ``send()`` is a generator of engine events.

With a :class:`~anechat.history.HistoryStore` the conversation is recorded as
it happens: the user's message is committed before generation starts, the
answer is written as it streams and closed with its status and figures (a
cancelled or failed answer is kept, marked partial / error). The history never
stops the chat: on a full or read-only disk the conversation goes on in memory,
:meth:`ChatController.take_history_warning` gives the one line to show, and what
could not be written is written at a later turn once writing works
(anechat.history.recorder).

The conversation alternates: the user's message joins it before anything else
can fail, and a turn that ends without an answer takes it out again, so two
user messages never follow each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from anechat.catalog.inuse import register_loaded, unregister_loaded
from anechat.catalog.sampling_defaults import model_sampling_defaults
from anechat.engines.base import CancelToken, Engine, Event, GenerationStats, Message, SamplingParams, Session
from anechat.engines.errors import InvalidParameter, NotLoaded
from anechat.engines.registry import ENGINE_NAMES, create_engine
from anechat.history.recorder import ChatRecorder
from anechat.history.store import new_session_id

Progress = Callable[[str, float | None], None]


@dataclass
class LoadedModel:
    name: str
    path: Path
    engine: str
    runtime: str
    format: str = ""
    size_bytes: int | None = None
    quantization: str = ""
    ref: str = ""  # what resolves to this model again later (catalog name, or its path)
    note: str = ""  # which variant was picked for the engine, when the name given was not it


@dataclass
class ChatState:
    system_prompt: str = ""
    params: SamplingParams = field(default_factory=SamplingParams)
    messages: list[Message] = field(default_factory=list)


class ChatController:
    """Holds one conversation and the engine/model currently answering it."""

    def __init__(
        self,
        *,
        system_prompt: str = "",
        params: SamplingParams | None = None,
        history=None,
        history_retry_s: float = 2.0,
        model_sampling: bool = False,
    ) -> None:
        """``model_sampling``: each loaded model's own sampling defaults
        (:func:`anechat.catalog.sampling_defaults.model_sampling_defaults`) replace the
        chat's parameters, until the person sets them (or an opened session brings its own)."""
        self.history_retry_s = history_retry_s  # unsaved history is tried again at a turn this long after a failure
        self.state = ChatState(system_prompt=system_prompt, params=(params or SamplingParams()).validate())
        self.history = history  # a HistoryStore, or None to record nothing
        self.session_id: str | None = None
        self._engines: dict[str, Engine] = {}
        self.engine: Engine | None = None
        self.session: Session | None = None
        self.loaded: LoadedModel | None = None
        self.last_stats: GenerationStats | None = None
        self._loaded_token: str | None = None  # marks the model as in use for `anechat models rm`
        self.model_sampling = model_sampling
        #: the parameters models' defaults may still replace: the starting ones and the last
        #: ones a model gave; once the chat's differ (set by the person), defaults stop applying
        self._replaceable_params = {self.state.params}
        self.sampling_source = ""  # where the parameters came from, in words (the dialog shows it)

    # -- loading ------------------------------------------------------------------
    def load(self, model: str | None, engine: str, progress: Progress | None = None) -> LoadedModel:
        """Resolve ``model`` (catalog name or path; None = default) to its variant for ``engine``
        (:func:`anechat.catalog.variants.resolve_variant`) and load it."""
        from anechat.catalog.variants import resolve_variant
        from anechat.convert.default_model import local_model_path

        if engine not in ENGINE_NAMES:
            raise InvalidParameter(f"unknown engine {engine!r}: use one of {', '.join(ENGINE_NAMES)}")
        choice = resolve_variant(model, engine)  # the model's variant for this engine
        entry = choice.entry
        path = local_model_path(entry, progress)
        eng = self._engine(engine)
        if self.engine is not None and self.engine is not eng:
            self.engine.unload()
        eng.unload()
        self._release_mark()
        self.engine = self.session = self.loaded = None  # a failed load leaves nothing stale behind
        session = eng.load(path)
        self.engine, self.session = eng, session
        self._loaded_token = register_loaded(path)
        self.loaded = LoadedModel(
            name=entry.name,
            path=Path(path),
            engine=engine,
            runtime=eng.available().runtime,
            format=entry.format,
            size_bytes=entry.size_bytes,
            quantization=entry.quantization,
            ref=str(path) if entry.source == "path" else entry.name,
            note=choice.note,
        )
        self._take_model_sampling(Path(path))
        self._record_settings()
        return self.loaded

    def _take_model_sampling(self, folder: Path) -> None:
        """The model's own sampling defaults (its generation_config.json, else a mild
        repetition penalty) while the chat's parameters are still ones a model may replace;
        the chat's max_tokens and seed stay."""
        if not self.model_sampling or self.state.params not in self._replaceable_params:
            return
        params, self.sampling_source = model_sampling_defaults(folder, self.state.params)
        self.state.params = params.validate()
        self._replaceable_params.add(self.state.params)

    def _engine(self, name: str) -> Engine:
        if name not in self._engines:
            self._engines[name] = create_engine(name)
        return self._engines[name]

    def unload(self) -> None:
        for eng in self._engines.values():
            eng.unload()
        self.engine = self.session = self.loaded = None
        self._release_mark()

    def _release_mark(self) -> None:
        if self._loaded_token is not None:
            unregister_loaded(self._loaded_token)
            self._loaded_token = None

    # -- conversation ---------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        return self.state.messages

    def conversation(self) -> list[Message]:
        system = [Message("system", self.state.system_prompt)] if self.state.system_prompt else []
        return system + list(self.state.messages)

    def set_system_prompt(self, text: str) -> None:
        self.state.system_prompt = text.strip()
        self._record_settings()

    def set_params(self, params: SamplingParams) -> None:
        """The person's parameters for this chat: models' defaults no longer replace them."""
        params = params.validate()
        if params != self.state.params:
            self._replaceable_params.clear()
            self.sampling_source = "set by you for this chat"
        self.state.params = params
        self._record_settings()

    def new_chat(self) -> None:
        """Start over: an empty conversation (and, with history, a new session on the next message)."""
        self.state.messages.clear()
        self.session_id = None

    # -- history ------------------------------------------------------------------
    @property
    def history(self):
        """The HistoryStore this chat is recorded in, or None."""
        return self._recorder.store if self._recorder is not None else None

    @history.setter
    def history(self, store) -> None:
        self._recorder = None if store is None else ChatRecorder(store, retry_interval_s=self.history_retry_s)

    def take_history_warning(self) -> str | None:
        """One line about the history that could not be saved: once per outage, then None."""
        return self._recorder.take_warning() if self._recorder is not None else None

    @property
    def history_pending(self) -> int:
        """History writes kept in memory until the database can take them."""
        return self._recorder.pending if self._recorder is not None else 0

    def open_session(self, session_id: str) -> tuple[str, str]:
        """Restore a recorded session's conversation, system prompt and parameters.

        Returns its (model, engine) for the caller to load; the engine's cache is
        warmed from the restored history on the next turn (its prefix differs, so
        the whole conversation is prefilled once).
        """
        if self.history is None:
            raise InvalidParameter("no chat history is open")
        record = self.history.get_session(self.history.resolve_id(session_id))
        self.state.messages = _answered([Message.coerce(m) for m in record.conversation(include_system=False)])
        self.state.system_prompt = record.system_prompt
        try:
            self.state.params = record.sampling_params().validate()
        except (TypeError, InvalidParameter):
            self.state.params = SamplingParams()
        self._replaceable_params.clear()  # the session's own parameters stay
        self.sampling_source = "from the opened session"
        self.session_id = record.id
        return record.model, record.engine

    def _record_settings(self) -> None:
        if self._recorder is None or self.session_id is None:
            return
        loaded = self.loaded
        self._recorder.update_session(
            self.session_id,
            model=loaded.ref if loaded else None,
            engine=loaded.engine if loaded else None,
            system_prompt=self.state.system_prompt,
            params=self.state.params,
        )

    def _record_user(self, text: str):
        """Record the user's message before generation starts; returns the answer being recorded."""
        if self._recorder is None:
            return None
        loaded = self.loaded
        if self.session_id is None:
            self.session_id = new_session_id()
            self._recorder.new_session(
                self.session_id, loaded.ref if loaded else "", loaded.engine if loaded else "",
                self.state.system_prompt, self.state.params,
            )
        return self._recorder.start_turn(
            self.session_id, text, model=loaded.ref if loaded else None, engine=loaded.engine if loaded else None
        )

    def send(self, text: str, cancel: CancelToken | None = None) -> Iterator[Event]:
        """Append the user's message and stream the answer; the answer is appended when done.

        A cancelled or failed answer keeps what was produced (marked by the final
        stats' finish_reason) so the conversation and the engine cache stay in step.
        """
        if self.session is None:
            raise NotLoaded("no model is loaded", hint="load one first (anechat models list shows what is here)")
        if not text.strip():
            raise InvalidParameter("the message is empty: type something first")
        self.state.messages.append(Message("user", text))
        answer = None
        try:
            answer = self._record_user(text)
            events = self.session.generate(self.conversation(), self.state.params, cancel)
            for event in events:
                if isinstance(event, GenerationStats):
                    self.last_stats = event
                    if event.text or event.finish_reason != "error":
                        self.state.messages.append(Message("assistant", event.text))
                    if answer is not None:
                        self._recorder.finish(answer, event.text, stats=event)
                elif answer is not None and event.text:
                    self._recorder.append(answer, event.text)
                yield event
        except BaseException as exc:
            if answer is not None:
                status = "partial" if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) else "error"
                self._recorder.finish(answer, status=status)
            raise
        finally:
            if self.state.messages and self.state.messages[-1].role == "user":
                self.state.messages.pop()  # no answer came: the next message must not follow it

    def regenerate_last(self, cancel: CancelToken | None = None) -> Iterator[Event]:
        """Drop the last answer and ask again (the cache trims to the common prefix)."""
        while self.state.messages and self.state.messages[-1].role == "assistant":
            self.state.messages.pop()
        if not self.state.messages:
            raise InvalidParameter("nothing to regenerate yet")
        last = self.state.messages.pop()
        return self.send(last.content, cancel)

    # -- editing the conversation (regenerate, edit and resend) --------------------------
    def truncate_before(self, index: int) -> Message:
        """Drop message ``index`` and everything after it, to ask again from there; returns it.

        The engine trims its KV cache on the next turn (longest common token prefix),
        so only what follows the kept messages is prefilled again. With history, the
        recorded session keeps what was said; the chat goes on in a new session that
        starts with the kept messages (an edit forks the chat, nothing is lost).
        """
        if not 0 <= index < len(self.state.messages):
            raise InvalidParameter(f"no message {index}: the conversation has {len(self.state.messages)}")
        removed = self.state.messages[index]
        del self.state.messages[index:]
        if self.history is not None and self.session_id is not None:
            self._fork_history()
        return removed

    def _fork_history(self) -> None:
        from anechat.history.records import auto_title

        self.session_id = None
        kept = self.state.messages
        if not kept:
            return
        loaded = self.loaded
        first_user = next((m.content for m in kept if m.role == "user"), "")
        try:
            sid = self.history.new_session(
                loaded.ref if loaded else "", loaded.engine if loaded else "", self.state.system_prompt,
                self.state.params, title=auto_title(first_user) + " (edited)",
            )
            for message in kept:
                self.history.add_message(sid, message.role, message.content)
        except Exception:  # the history never takes the chat down: the next message starts a session
            return
        self.session_id = sid


def _answered(messages: list[Message]) -> list[Message]:
    """``messages`` without the user messages that got no answer (a failed turn, a process
    that ended mid-answer): a conversation never has two user messages in a row."""
    return [m for i, m in enumerate(messages)
            if m.role != "user" or (i + 1 < len(messages) and messages[i + 1].role != "user")]
