"""Which ranks to start: ``--hosts a,b,...`` or ``--hostfile FILE`` (mlx.launch's
JSON host file), and the ring addresses rank 0 hands every rank.

Rank 0 is always the first host and is this process; the rest are followers that
``mlx.launch`` starts. ``127.0.0.1`` (repeated for several local ranks) runs
local processes; any other name is reached by ssh, as ``mlx.launch`` does.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path

from anechat.engines.errors import InvalidParameter

SHARDS = ("pipeline", "tensor")
LOCAL = "127.0.0.1"
#: the ring backend's first port on real hosts (mlx.launch's default)
FIRST_PORT = 32323


@dataclass(frozen=True)
class Host:
    ssh: str  # the name mlx.launch reaches it by (127.0.0.1: a local process)
    ip: str  # the address the ring backend connects to

    @property
    def local(self) -> bool:
        return self.ssh == LOCAL


@dataclass(frozen=True)
class RankPlan:
    """The ranks of a distributed MLX session and how the model is split over them."""

    hosts: tuple[Host, ...]
    shard: str = "pipeline"
    envs: tuple[str, ...] = field(default=())  # from the host file, passed to mlx.launch

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def all_local(self) -> bool:
        return all(h.local for h in self.hosts)

    def label(self) -> str:
        """``2 ranks (pipeline)``: what the status line shows."""
        return f"{self.size} ranks ({self.shard})"

    def ring(self) -> list[list[str]]:
        """The ring backend's host file: one ``ip:port`` per rank.

        Local-only rings take free ports (several sessions and test runs share a
        machine); real hosts use mlx.launch's fixed ports from 32323 up.
        """
        if self.all_local:
            return [[f"{LOCAL}:{port}"] for port in _free_ports(self.size)]
        remote = next(h.ip for h in self.hosts if not h.local)
        here = _outward_ip(remote)  # local ranks must be reachable from the other hosts
        return [[f"{here if h.local else h.ip}:{FIRST_PORT + i}"] for i, h in enumerate(self.hosts)]

    def hostfile(self) -> dict:
        """The followers (ranks 1..) in mlx.launch's host file format."""
        return {
            "backend": "ring",
            "envs": list(self.envs),
            "hosts": [{"ssh": h.ssh, "ips": [h.ip]} for h in self.hosts[1:]],
        }


def plan_from(hosts: str | None, hostfile: str | Path | None, shard: str = "pipeline") -> RankPlan | None:
    """The plan for ``--hosts`` / ``--hostfile`` (None when neither is given)."""
    if shard not in SHARDS:
        raise InvalidParameter(f"--shard {shard!r} is invalid: use one of {', '.join(SHARDS)}")
    if hosts and hostfile:
        raise InvalidParameter("give --hosts or --hostfile, not both")
    if hostfile:
        parsed, envs = _read_hostfile(Path(hostfile).expanduser())
    elif hosts:
        parsed, envs = [_host(name.strip()) for name in hosts.split(",")], ()
    else:
        return None
    if len(parsed) < 2:
        raise InvalidParameter(
            f"{len(parsed)} host given: a distributed session needs at least 2 ranks",
            hint="list this machine first and every other host after it, e.g. --hosts 127.0.0.1,127.0.0.1",
        )
    return RankPlan(hosts=tuple(parsed), shard=shard, envs=tuple(envs))


def _host(name: str) -> Host:
    if not name:
        raise InvalidParameter("--hosts has an empty name", hint="separate host names with commas, e.g. 127.0.0.1,127.0.0.1")
    try:
        ipaddress.ip_address(name)
        return Host(ssh=name, ip=name)
    except ValueError:
        pass
    try:
        ip = socket.gethostbyname(name)
    except OSError as exc:
        raise InvalidParameter(f"host {name!r} cannot be resolved ({exc})", hint="use its IP address, or a --hostfile with ips") from exc
    return Host(ssh=name, ip=ip)


def _read_hostfile(path: Path) -> tuple[list[Host], list[str]]:
    """mlx.launch's host file, read by mlx's own parser."""
    from mlx._distributed_utils.common import Hostfile

    try:
        parsed = Hostfile.from_file(path)
    except ValueError as exc:
        raise InvalidParameter(str(exc).replace("Hostfile", "host file"), hint="see `mlx.distributed_config --help` for the format") from exc
    if parsed.backend not in ("", "ring"):
        raise InvalidParameter(f"{path} asks for the {parsed.backend} backend: anechat uses the ring backend")
    hosts = []
    for h in parsed.hosts:
        if not h.ips:
            hosts.append(_host(h.ssh_hostname))
        else:
            hosts.append(Host(ssh=h.ssh_hostname, ip=h.ips[0]))
    return hosts, list(parsed.envs)


def _outward_ip(peer: str) -> str:
    """This machine's address on the way to ``peer`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((peer, 9))
            return s.getsockname()[0]
        except OSError:
            return LOCAL


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOCAL, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def ring_json(plan: RankPlan) -> str:
    return json.dumps(plan.ring())
