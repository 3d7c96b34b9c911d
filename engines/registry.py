"""Engine names -> engine classes, imported lazily (so `--help` and `doctor` stay fast)."""

from __future__ import annotations

import importlib

from anechat.engines.base import Availability, Engine
from anechat.engines.errors import BackendUnavailable, InvalidParameter

ENGINES: dict[str, tuple[str, str]] = {
    "mlx": ("anechat.engines.mlx.engine", "MLXEngine"),
    "coreml": ("anechat.engines.coreml.engine", "CoreMLEngine"),
    "coreai": ("anechat.engines.coreai.engine", "CoreAIEngine"),
}
ENGINE_NAMES = tuple(ENGINES)


def engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise InvalidParameter(f"unknown engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")
    module_name, class_name = ENGINES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = name
        raise BackendUnavailable(
            f"the {name} engine cannot be imported ({exc})",
            hint=f'install it with: pip install "anechat[{extra}]"',
        ) from exc
    return getattr(module, class_name)


def availability(name: str) -> Availability:
    try:
        return engine_class(name).available()
    except BackendUnavailable as exc:
        return Availability(False, str(exc))


def create_engine(name: str) -> Engine:
    """A ready engine, or BackendUnavailable with the reason. With ranks planned
    (:func:`use_ranks`), the mlx engine is rank 0 of a distributed session."""
    cls = engine_class(name)
    avail = cls.available()
    if not avail.ok:
        raise BackendUnavailable(f"the {name} engine is not available here: {avail.reason}")
    if name == "mlx" and _ranks is not None:
        return _rank_zero()
    return cls()


def _rank_zero() -> Engine:
    """The one distributed MLX engine of this process (MLX joins one ring per process)."""
    global _ranks_engine
    if _ranks_engine is not None:
        raise InvalidParameter(
            "the ranks of --hosts already serve one MLX model in this process",
            hint="run one MLX model across the hosts at a time (other engines can run beside it)",
        )
    from anechat.engines.mlx.distributed.engine import DistributedMLXEngine

    _ranks_engine = DistributedMLXEngine(_ranks)
    return _ranks_engine


_ranks_engine: Engine | None = None


#: the ranks `--hosts` / `--hostfile` asked for (an mlx.distributed.hosts.RankPlan), or None
_ranks = None


def use_ranks(plan) -> None:
    """Run the mlx engines this process creates across ``plan``'s ranks (None: one process)."""
    global _ranks
    _ranks = plan


def planned_ranks():
    return _ranks
