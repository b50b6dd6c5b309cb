"""A gloo DDP worker for tests that train any recipe mapping on the stub modalities in several processes."""

from __future__ import annotations

import os
from typing import Any


def stub_recipe_ddp_worker(rank: int, world: int, port: int, out: str, raw: dict[str, Any],
                           feature_names: tuple[str, ...] = ("toya", "toyb")) -> None:
    """One process of a gloo DDP run of ``raw`` on :func:`bindcore.testing.stubs.stub_registry` (a
    ``torch.multiprocessing.spawn`` target)."""
    import torch.distributed as dist

    from bindcore.plugins import set_registry
    from bindcore.recipe import validate_recipe
    from bindcore.testing.stubs import stub_registry
    from bindcore.train.trainer import train

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    set_registry(stub_registry(*feature_names))
    try:
        train(validate_recipe(raw), out, log=lambda _m: None)
    finally:
        dist.destroy_process_group()
