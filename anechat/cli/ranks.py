"""The options that run the MLX engine across several processes or Macs, shared by
the app, `run`, `chat`, `bench`, `compare`, `api` and `doctor`: declare them with
``HostsOpt`` / ``HostfileOpt`` / ``ShardOpt`` and call :func:`use_hosts` first thing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import typer

PANEL = "Several Macs (MLX)"

HostsOpt = typer.Option(
    None,
    "--hosts",
    help="Run the MLX engine across these hosts, this machine first: 127.0.0.1,127.0.0.1 starts two local ranks; "
    "127.0.0.1,mini2 starts rank 1 on mini2 over ssh (mlx.launch, ring backend). Every host needs the model at the same path.",
    rich_help_panel=PANEL,
)
HostfileOpt = typer.Option(
    None, "--hostfile", help="mlx.launch's JSON host file (ssh names and ring IPs) instead of --hosts.", dir_okay=False, rich_help_panel=PANEL
)
ShardOpt = typer.Option(
    "pipeline",
    "--shard",
    help="How the model is split over the hosts: pipeline (layers per rank; fewer bytes over the link) or tensor (every layer split).",
    rich_help_panel=PANEL,
)


def use_hosts(hosts: Optional[str], hostfile: Optional[Path], shard: str, engines: Sequence[str] = ("mlx",)):
    """Plan the ranks for this process's MLX engine; the plan, or None without --hosts/--hostfile.

    Raises a one-line error for a bad host list or file, or when no engine asked for is mlx.
    """
    from anechat.engines.errors import InvalidParameter
    from anechat.engines.mlx.distributed.hosts import plan_from
    from anechat.engines.registry import use_ranks

    plan = plan_from(hosts, hostfile, shard)
    if plan is None:
        return None  # nothing asked here (`anechat --hosts A,B run ...` planned it already)
    if "mlx" not in engines:
        raise InvalidParameter(f"--hosts runs the mlx engine; {', '.join(engines)} runs in one process", hint="add -e mlx, or leave out --hosts")
    use_ranks(plan)
    return plan
