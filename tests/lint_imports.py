"""Run import-linter with pyproject.toml's contracts: ``python tests/lint_imports.py``
(or plain ``lint-imports`` from the repository root).

The project maps its top-level folders under one import namespace (engines/ ->
anechat.engines, tui/ -> anechat.tui); the links anechat/engines and anechat/tui let
import-linter see the namespace on disk as Python sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports() -> subprocess.CompletedProcess:
    command = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", command, str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


if __name__ == "__main__":
    result = lint_imports()
    sys.stdout.write(result.stdout + result.stderr)
    sys.exit(result.returncode)
