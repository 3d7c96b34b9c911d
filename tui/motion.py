"""Low motion (slow SSH links): fewer frames and no animations for the whole process.

Textual reads TEXTUAL_FPS and TEXTUAL_ANIMATIONS when it is imported; when it already
is, its screen refresh rate is lowered directly. The app itself draws less too (see
AnechatApp's rates), which it decides from its own ``low_motion`` flag.
"""

from __future__ import annotations

import os
import sys

LOW_MOTION_FPS = "12"


def apply_low_motion() -> None:
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    os.environ.setdefault("TEXTUAL_FPS", LOW_MOTION_FPS)
    screen = sys.modules.get("textual.screen")
    if screen is not None:  # Textual already imported: lower its screen refresh rate directly
        screen.UPDATE_PERIOD = 1 / int(os.environ["TEXTUAL_FPS"])
