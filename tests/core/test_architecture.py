"""The house rules, checked: imports go tui -> anechat -> engines (import-linter), and `--help` stays light."""

from __future__ import annotations

import subprocess
import sys

from lint_imports import lint_imports


def test_every_import_linter_contract_is_kept():
    """pyproject.toml's [tool.importlinter] contracts: the floors, the UI's view of the
    engines (the contract only), textual only in the UI, no cycles between siblings."""
    result = lint_imports()
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


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
