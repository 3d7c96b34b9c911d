"""``python -m anechat.tui``: the app with the config file's defaults (what ``anechat serve`` runs)."""

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

from .app import main  # noqa: E402

main()
