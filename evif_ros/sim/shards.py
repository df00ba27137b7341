"""Writing a dataset as shards, in parallel and resumably: the one runner of
`evif dataset` and `evif video-dataset`."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

from tqdm import tqdm


def run_shard_jobs(job: Callable, jobs: Sequence[tuple], sizes: Sequence[int], total: int,
                   desc: str, unit: str, workers: int | None = None,
                   progress: bool = True) -> None:
    """Run ``job(args)`` for each of ``jobs`` (the shards still missing; ``sizes``: their
    item counts) over ``workers`` processes (default: the cores, at most one per job), with
    a progress bar over ``total`` items that starts at what earlier runs wrote."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    bar = tqdm(total=total, initial=total - sum(sizes), unit=unit, desc=desc,
               disable=not progress)
    if workers == 1:
        for args, size in zip(jobs, sizes):
            job(args)
            bar.update(size)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for size, _ in zip(sizes, pool.map(job, jobs)):
                bar.update(size)
    bar.close()
