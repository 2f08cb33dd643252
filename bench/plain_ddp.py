"""A plain torchrun DDP script: the baseline kubetrain's loop is measured against.

Same model, data shard, batch size and optimizer as kubetrain's, but nothing else: no metrics,
no checkpoints, no Ray. Run as `python -m torch.distributed.run --nproc_per_node N plain_ddp.py`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from kubetrain.api import parse_job
from kubetrain.trainer.data import load_splits
from kubetrain.trainer.loop import equal_shard
from kubetrain.trainer.models import build_model


def main() -> None:
    job = parse_job(json.loads(sys.argv[1]))
    spec = job.spec
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(spec.training.seed)
    splits = load_splits(spec)
    data = equal_shard(splits.train, rank, world)
    model = build_model(spec.model, splits.info)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=spec.training.optimizer.lr)
    epoch_seconds, steps = [], 0
    for epoch in range(spec.training.epochs):
        gen = torch.Generator().manual_seed(epoch)
        loader = DataLoader(data, batch_size=spec.dataset.batch_size, shuffle=True, generator=gen)
        t0 = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(ddp(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        slowest = torch.tensor([time.perf_counter() - t0])
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        epoch_seconds.append(float(slowest[0]))
        if rank == 0:  # bench/startup.py times the first of these lines
            print(f"epoch {epoch + 1}/{spec.training.epochs}", flush=True)
    if rank == 0:
        out = {"epoch_seconds": epoch_seconds, "steps_per_epoch": steps // spec.training.epochs}
        with Path(os.environ["PLAIN_DDP_OUT"]).open("w") as fh:
            json.dump(out, fh)
    # Leave together, without tearing gloo down: destroy_process_group (or gloo's threads at
    # interpreter exit) aborted with "terminate called without an active exception" in 1 of
    # ~5 runs, even after a barrier. The result is already on disk.
    dist.barrier()
    os._exit(0)


if __name__ == "__main__":
    main()
