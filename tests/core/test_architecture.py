"""The house rules, checked: imports go tui -> anechat -> engines, and `--help` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(folder: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / folder).rglob("*.py"):
        names: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the package the file sits in
                    names.add("." * node.level + (node.module or ""))
                else:
                    names.add(node.module or "")
        found[path] = names
    return found


def test_engines_import_neither_textual_nor_the_rest_of_anechat():
    for path, names in _imports("engines").items():
        depth = len(path.relative_to(ROOT / "engines").parts) - 1
        for name in names:
            assert not name.startswith("textual"), f"{path} imports {name}"
            assert not name.startswith("anechat.") or name.startswith("anechat.engines"), f"{path} imports {name}"
            if name.startswith("."):
                dots = len(name) - len(name.lstrip("."))
                assert dots <= depth + 1, f"{path} reaches outside engines/ with {name}"


def test_core_never_imports_the_ui():
    for path, names in _imports("anechat").items():
        for name in names:
            assert not name.startswith("textual"), f"{path} imports {name}: only tui/ may use textual"
            assert not name.startswith("anechat.tui") and not name.startswith(".tui"), f"{path} imports the UI"


def test_engines_work_from_a_plain_script_without_the_ui():
    code = (
        "import sys, anechat.engines.base, anechat.engines.session, anechat.engines.registry;"
        "assert 'textual' not in sys.modules, 'textual was imported';"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_help_imports_no_heavy_library():
    code = (
        "import sys; sys.argv=['anechat','--help'];"
        "from anechat.tui.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy=[m for m in ('mlx','mlx_lm','torch','coremltools','textual','transformers','huggingface_hub') if m in sys.modules];"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[-500:]
