"""The same synthetic training step under PyTorch DDP (gloo) or plain PyTorch, for comparison.

usage: python -m torch.distributed.run --nproc_per_node 2 benchmarks/ddp_step.py --model mlp
       python benchmarks/ddp_step.py --plain --model mlp
Prints "step time X ms" (median over iterations) on rank 0.
"""

import argparse
import statistics
import time

import torch

from hpcsuite.train.synthetic import build

p = argparse.ArgumentParser()
p.add_argument("--model", default="mlp")
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--plain", action="store_true", help="one process, no DDP")
p.add_argument("--iters", type=int, default=5)
p.add_argument("--per-iter", type=int, default=10)
args = p.parse_args()
torch.manual_seed(0)
model, sample = build(args.model)
rank, size = 0, 1
if not args.plain:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    model = torch.nn.parallel.DistributedDataParallel(model)
opt = torch.optim.SGD(model.parameters(), lr=0.01 * size)
data, target = torch.randn(args.batch_size, *sample), torch.randint(0, 10, (args.batch_size,))
loss_fn = torch.nn.CrossEntropyLoss()


def step():
    opt.zero_grad()
    loss_fn(model(data), target).backward()
    opt.step()


for _ in range(5):
    step()
times = []
for _ in range(args.iters):
    t = time.perf_counter()
    for _ in range(args.per_iter):
        step()
    times.append((time.perf_counter() - t) / args.per_iter)
if rank == 0:
    print(
        f"step time {1e3 * statistics.median(times):.3f} ms"
        f" ({'plain' if args.plain else f'DDP gloo x{size}'})"
    )
if not args.plain:
    dist.destroy_process_group()
