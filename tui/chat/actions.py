"""Every action of the chat screen: its key, its footer label and its command palette
entry (AnechatApp.get_system_commands lists them all, each with its key).

Keys are chosen to survive tmux and SSH (no Ctrl+B: tmux's prefix) and can be remapped
in config.toml's ``[keys]`` table, action name -> key (e.g. ``copy_code = "f3"``);
each binding's id is its action name, which is what Textual's keymap looks up."""

#: (key, action, footer label, palette title, palette help): every action is in both
ACTIONS = [
    ("ctrl+o", "models", "Models", "Models: pick one and load it", "Fuzzy filter over the models here"),
    ("ctrl+g", "manage_models", "Manage", "Manage models", "Models here: filter, info, pull, remove, convert, load"),
    ("ctrl+e", "engine", "Engine", "Switch engine", "The conversation continues on the other engine"),
    ("ctrl+n", "new_chat", "New", "New chat", "Start a new conversation"),
    ("ctrl+l", "sessions", "Sessions", "Sessions", "Saved chats: open, rename, delete, search by text"),
    ("ctrl+s", "settings", "Settings", "System prompt & sampling", "Edit the system prompt and sampling parameters"),
    ("ctrl+r", "copy_answer", "Copy", "Copy the last answer", "To the clipboard through the terminal (OSC 52, works over SSH)"),
    ("ctrl+y", "copy_code", "Code", "Copy a code block", "From the last answer (OSC 52, works over SSH)"),
    ("f5", "regenerate", "Regen", "Regenerate the last answer", "Ask the last message again; the new answer replaces the old (also /regen)"),
    ("f2", "edit_message", "Edit", "Edit a sent message and resend", "F2 picks the last message (again: the one before); Enter resends from there"),
    ("ctrl+f", "search", "Find", "Find in this chat", "Mark the messages holding a text; Enter/F3 next, Shift+Enter/Shift+F3 previous"),
    ("ctrl+t", "toggle_stats", "Stats", "Toggle the stats panels", "Show or hide the speed and memory panels"),
    ("escape", "stop", "Stop", "Stop the answer", "Stop the answer that is streaming (Esc)"),
    ("ctrl+q", "app.quit", "Quit", "Quit", "Leave anechat (the chat is in the history)"),
]

#: the actions the footer shows (it fits 80 columns with the palette key); the others
#: are in the palette (Ctrl+P) with their keys
IN_FOOTER = {"models", "engine", "new_chat", "settings", "copy_answer", "stop", "app.quit"}


def action_id(action: str) -> str:
    """The binding id (the name in config.toml's [keys]): the action without its namespace."""
    return action.removeprefix("app.")
