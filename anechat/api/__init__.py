"""``anechat api``: an OpenAI-compatible HTTP API over every engine (aiohttp, no textual).

    server.py        the aiohttp app: routes, the request log, startup and shutdown
    guard.py         safe by default: loopback, API key, Origin and Host checks, body cap
    errors.py        anechat's errors in OpenAI's error shape, kind -> HTTP status
    requests.py      request bodies -> typed requests (sampling parameters, stops, stream)
    pool.py          loaded models: which to load, which to unload, one generation at a time
    generation.py    one generation on the engine thread, streamed to the event loop
    engine_thread.py the one thread that makes every engine call
    stops.py         stop strings over streamed text
    responses.py     OpenAI response and chunk shapes, usage and the ``x_anechat`` figures
"""
