"""Slash commands typed in the chat's message box: the table in
:mod:`anechat.chat.commands` (shared with `anechat chat`), acted on here; Tab
completes a command's name."""

from __future__ import annotations

from anechat.chat.commands import APP, Command, apply_params, complete, help_lines, message_text, params_line, parse
from anechat.chat.transcript import export_conversation
from anechat.engines.errors import AnechatError

from anechat.tui.errors import error_line


class SlashCommands:
    def __init__(self, chat) -> None:
        self.chat = chat

    async def submitted(self, line: str) -> None:
        """What Enter does with the box's text: a command, an edited message, or a message."""
        chat = self.chat
        try:
            command = parse(line, APP)
        except AnechatError as exc:
            await chat.pane.add_notice(str(exc), "error")
            return
        if command is not None:
            await self.run(command)
        elif chat.editing.active:
            await chat.editing.resend(message_text(line))
        else:
            await chat.send(message_text(line))

    async def run(self, command: Command) -> None:
        chat = self.chat
        name, arg = command.name, command.arg
        try:
            if name == "/help":
                await chat.pane.add_notice("\n".join(["commands (// sends a message that starts with /):", *help_lines(APP)]), "info")
            elif name == "/quit":
                chat.app.exit()
            elif name == "/reset":
                await chat.action_new_chat()
            elif name == "/system":
                chat.controller.set_system_prompt(arg)
                await chat.pane.add_notice("system prompt set" if arg else "system prompt cleared", "info")
            elif name == "/regen":
                await chat.editing.regenerate()
            elif name == "/params":
                await self._params(command)
            elif name == "/export":
                fmt, path = command.value
                written = await chat.app.engine_thread.run(export_conversation, chat.controller, fmt, path)
                await chat.pane.add_notice(f"wrote {written}", "info")
            elif name == "/engine":
                chat.use_engine(command.value)
            elif name == "/model":
                engine = chat.controller.loaded.engine if chat.controller.loaded else chat.app.engine_name
                chat.load_model(arg, engine)
            elif name == "/compare":
                await chat.inline_compare.start(arg)
            elif name == "/search":
                await chat.search.open(arg)
        except AnechatError as exc:  # a bad value: one line in the chat, the chat goes on
            await chat.pane.add_notice(error_line(exc), "error")
        except Exception as exc:  # a fault of ours: said in one line, never a dead chat or a closed app
            await chat.pane.add_notice(f"{name} failed: {error_line(exc)}", "error")

    async def _params(self, command: Command) -> None:
        chat = self.chat
        if not command.value:
            chat.action_settings()
            return
        chat.controller.set_params(apply_params(chat.controller.state.params, command.value))
        await chat.pane.add_notice(f"sampling for this chat: {params_line(chat.controller.state.params)}", "info")

    def complete(self) -> bool:
        """Tab in the box: complete the command name being typed; False when there is none."""
        box = self.chat.chat_input
        text = box.text
        if not text.startswith("/") or " " in text or "\n" in text:
            return False
        names = complete(text, APP)
        if not names:
            return False
        common = names[0]
        for name in names[1:]:
            while not name.startswith(common):
                common = common[:-1]
        if len(names) == 1:
            common += " "
        elif common == text:
            self.chat.notify("  ".join(names))
        box.load_text(common)
        box.move_cursor(box.document.end)
        return True
