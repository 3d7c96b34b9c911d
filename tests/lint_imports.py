"""Run import-linter over the house as Python sees it installed.

The project maps its top-level folders under one import namespace (engines/ ->
anechat.engines, tui/ -> anechat.tui), which import-linter cannot follow on disk.
This lays the sources out once in a temporary folder as the namespace looks, and
runs ``lint-imports`` there with pyproject.toml's contracts.

    python tests/lint_imports.py        # exit 0 when every contract is kept
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPING = {"anechat": "anechat", "engines": "anechat/engines", "tui": "anechat/tui"}


def lay_out(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for src, target in MAPPING.items():
        shutil.copytree(ROOT / src, dest / target, ignore=ignore, dirs_exist_ok=True)


def lint_imports() -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="anechat-imports-") as tmp:
        lay_out(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        command = "from importlinter.cli import lint_imports_command; lint_imports_command()"
        return subprocess.run(
            [sys.executable, "-c", command, str(ROOT / "pyproject.toml"), "--no-cache"],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
        )


if __name__ == "__main__":
    result = lint_imports()
    sys.stdout.write(result.stdout + result.stderr)
    sys.exit(result.returncode)
