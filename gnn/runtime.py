"""Process-level helpers shared by training and evaluation: seeding, devices, memory,
torch.distributed."""

from __future__ import annotations

import logging
import os
import random
import resource
import sys

import numpy as np
import torch
import torch.distributed as dist

from core.errors import ConfigError

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels where it has them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # warn_only: a few scatter kernels have no deterministic CUDA version; CPU runs are exact
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA device is visible: use "
                          "--device auto or cpu")
    if name == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def peak_gpu_mb() -> float | None:
    """Peak memory PyTorch's CUDA allocator held in this process (None without a CUDA device)."""
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / (1024 * 1024)


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> bool:
    """Join the process group torchrun describes (env RANK/WORLD_SIZE); gloo on CPU, nccl on GPU.
    Returns False when not launched by torchrun."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
            if local > torch.cuda.device_count():
                # NCCL refuses two ranks on one GPU ("Duplicate GPU detected") at the first
                # collective, deep inside the first step: say it before anything starts
                raise ConfigError(
                    f"data-parallel training on CUDA (nccl) needs one GPU per process: "
                    f"{local} processes on this machine, {torch.cuda.device_count()} GPU(s) "
                    f"visible; use --nproc_per_node={torch.cuda.device_count()}")
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    log.info("distributed: rank %d of %d", dist.get_rank(), dist.get_world_size())
    return True
