"""Every action of the chat screen: its key, its footer label and its command palette
entry (AnechatApp.get_system_commands lists them all)."""

#: (key, action, footer label, palette title, palette help): every action is in both
ACTIONS = [
    ("ctrl+o", "models", "Models", "Models: pick one and load it", "Fuzzy filter over the models here"),
    ("ctrl+g", "manage_models", "Manage", "Manage models", "Models here: filter, info, pull, remove, convert, load"),
    ("ctrl+e", "engine", "Engine", "Switch engine", "The conversation continues on the other engine"),
    ("ctrl+n", "new_chat", "New", "New chat", "Start a new conversation"),
    ("ctrl+l", "sessions", "Sessions", "Sessions", "Saved chats: open, rename, delete, search by text"),
    ("ctrl+s", "settings", "Settings", "System prompt & sampling", "Edit the system prompt and sampling parameters"),
    ("ctrl+r", "copy_answer", "Copy", "Copy the last answer", "To the clipboard through the terminal (OSC 52, works over SSH)"),
    ("ctrl+b", "copy_code", "Code", "Copy a code block", "From the last answer (OSC 52, works over SSH)"),
    ("f5", "regenerate", "Regen", "Regenerate the last answer", "Ask the last message again; the new answer replaces the old (also /regen)"),
    ("f2", "edit_message", "Edit", "Edit a sent message and resend", "F2 picks the last message (again: the one before); Enter resends from there"),
    ("ctrl+f", "search", "Find", "Find in this chat", "Mark the messages holding a text; Enter/F3 next, Shift+Enter/Shift+F3 previous"),
    ("ctrl+t", "toggle_stats", "Stats", "Toggle the stats panels", "Show or hide the speed and memory panels"),
    ("escape", "stop", "Stop", "Stop the answer", "Stop the answer that is streaming (Esc)"),
]
