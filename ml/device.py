"""Where tensors live: CUDA when present, else CPU (CI has no GPU), and batch sizes."""

from __future__ import annotations

import torch

# On a CPU the convolutions and the rest-frame shift are memory-bound: a batch whose
# activations stay in the core's cache (a few MiB for 4,096 pixels) runs 1.5-3x faster
# than 1,024 spectra at once; a GPU wants large batches.
CPU_BATCH = 64
CUDA_BATCH = 4096


def pick_device(name: str | None = None) -> torch.device:
    """``name`` ('cpu', 'cuda', 'cuda:1') or the best available device."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def inference_batch(device: torch.device) -> int:
    """Spectra per forward pass at inference on ``device``."""
    return CUDA_BATCH if device.type == "cuda" else CPU_BATCH


def prepare_training(device: torch.device) -> None:
    """Settings that make training faster on ``device`` and change nothing on a CPU.

    On CUDA cuDNN benchmarks its convolution algorithms once per input shape: a training
    run repeats a handful of shapes thousands of times.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; to a GPU through pinned memory without waiting for
    the GPU's queue (a plain copy from pageable memory waits for every queued kernel,
    which serialises the host's work with the GPU's)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
