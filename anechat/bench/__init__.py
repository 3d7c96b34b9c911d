"""`anechat bench`: the mlx_lm.benchmark method for every engine, with a machine record and a history.

- :mod:`.method`  — random prompt tokens, one warm-up, stop tokens ignored, median over runs;
- :mod:`.machine` — what the figures were measured on;
- :mod:`.store`   — runs kept as JSON lines under ``<data dir>/bench``;
- :mod:`.report`  — the same rows as a Rich table or a Markdown table.
"""
