"""Every rank loads its part of a model at once (a LOAD message), then all ranks say
whether they managed, so none is left waiting on a rank that failed."""

from __future__ import annotations

from anechat.engines.errors import AnechatError, EngineError, ModelFormatError
from anechat.engines.mlx.distributed.link import Link, Message
from anechat.engines.mlx.distributed.session import RankSession


def load_rank(link: Link, message: Message) -> RankSession:
    """Load this rank's part of the model ``message`` names; raises what failed where."""
    from anechat.engines.mlx.loader import load_folder
    from anechat.engines.mlx.distributed.shard import split

    shard = "tensor" if message.start else "pipeline"
    error: AnechatError | None = None
    loaded = None
    try:
        loaded = load_folder(
            message.text, message.context_length or None, split=lambda model: split(model, link.group, shard), ranks=link.size
        )
    except AnechatError as exc:
        error = exc
    except Exception as exc:  # whatever it was, the other ranks must hear of it
        error = EngineError(f"rank {link.rank} could not load the model ({type(exc).__name__}: {exc})")
    done = link.gather_flags(error is None)
    if error is not None:
        raise error
    failed = [rank for rank, ok in enumerate(done) if not ok]
    if failed or loaded is None:
        raise ModelFormatError(
            f"rank(s) {', '.join(map(str, failed))} could not load {message.text}",
            hint="check that every host has the same model files (anechat doctor --hosts ...)",
        )
    return RankSession(loaded.model, loaded.info, loaded.tokenizer, link)
