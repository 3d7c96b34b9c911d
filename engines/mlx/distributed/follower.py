"""A follower rank (``python -m anechat.engines.mlx.distributed.follower``, started by
``mlx.launch``): joins the ring at its place, then loads, follows turns, reports
memory and unloads as rank 0 says, and exits when rank 0 ends (a QUIT message, or
the ring reporting rank 0 gone)."""

from __future__ import annotations

import gc
import os
import sys
import tempfile


def join_ring():
    """Take this rank's place in the full ring (mlx.launch numbered the followers from 0)."""
    import mlx.core as mx

    ring = os.environ["ANECHAT_RING"]
    fd, path = tempfile.mkstemp(prefix="anechat-ring-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        fh.write(ring)
    os.environ["MLX_HOSTFILE"] = path
    os.environ["MLX_RANK"] = rank = str(int(os.environ.get("MLX_RANK", "0")) + 1)
    from anechat.engines.mlx.distributed.launch import JOINING

    print(f"{JOINING} {rank}", flush=True)
    try:
        return mx.distributed.init(backend="ring", strict=True)
    finally:
        os.unlink(path)


def serve(group) -> None:
    from anechat.engines.errors import AnechatError
    from anechat.engines.mlx.distributed.link import LOAD, MEMORY, QUIT, TURN, UNLOAD, Link
    from anechat.engines.mlx.distributed.loading import load_rank
    from anechat.engines.mlx.runtime import generation_stream

    link = Link(group, generation_stream())
    session = None
    while True:
        message = link.receive()
        if message.kind == QUIT:
            return
        if message.kind == UNLOAD:
            session = None
            gc.collect()
        elif message.kind == LOAD:
            session = None
            gc.collect()
            try:
                session = load_rank(link, message)
            except AnechatError as exc:
                print(f"anechat rank {link.rank}: {exc}", file=sys.stderr, flush=True)
        elif message.kind == TURN and session is not None:
            session.follow(message)
        elif message.kind == MEMORY:
            link.gather_memory(session.memory_row() if session is not None else {})


def main() -> None:
    from anechat.engines.errors import AnechatError

    try:
        group = join_ring()
        serve(group)
    except AnechatError as exc:  # rank 0 went away, or the link broke
        print(f"anechat rank {os.environ.get('MLX_RANK')}: {exc}", file=sys.stderr, flush=True)
    except RuntimeError as exc:
        print(f"anechat rank {os.environ.get('MLX_RANK')}: {str(exc).splitlines()[0] if str(exc) else exc!r}", file=sys.stderr, flush=True)
    finally:
        from anechat.engines.threads import release_engine_thread

        release_engine_thread()
    os._exit(0)


if __name__ == "__main__":
    main()
