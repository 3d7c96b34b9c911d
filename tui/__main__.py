"""``python -m anechat.tui``: the app with the config file's defaults (what ``anechat serve`` runs)."""

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

from anechat.tui.entry import run_app  # noqa: E402

run_app()
