"""The MLX engine across several processes or Macs, on MLX's own distributed pieces.

``mlx.launch`` starts the follower ranks (ssh on real hosts, local processes for
``127.0.0.1``), ``mx.distributed`` (ring backend) connects them, and mlx-lm's
``model.model.pipeline(group)`` / ``model.shard(group)`` split the model. The
process the user started is rank 0: it runs the UI or CLI and drives generation
through the shared turn driver; every other rank runs :mod:`.follower`.

- :mod:`.hosts` — ``--hosts`` / ``--hostfile`` into a :class:`~.hosts.RankPlan`;
- :mod:`.probe` — what a host has (python, anechat, a model's files), for the
  start check and ``anechat doctor --hosts``;
- :mod:`.launch` — the followers under ``mlx.launch`` and their supervision;
- :mod:`.link` — the messages rank 0 sends each turn over ``mx.distributed``;
- :mod:`.shard` — loading only this rank's part of a model;
- :mod:`.session` / :mod:`.engine` — the MLX session and engine, one per rank.
"""
