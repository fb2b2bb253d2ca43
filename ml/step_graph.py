"""One training step per batch, replayed from a CUDA graph on a GPU.

Our networks are small: on an H100 a step of the autoencoder (batch 128 x 4,096 pixels)
is a few hundred kernels of microseconds each, so the GPU spends most of the step
waiting for Python to launch them (22 % utilisation measured). A CUDA graph records the
whole step (forward, backward and the fused optimiser update) once and relaunches it
with one call per batch. Only the batch's row indices change between steps; they are
copied into the tensor the graph was recorded with.

What a step may do to be recorded (the callers in ``ml.train`` keep to it): index
resident tensors with the row tensor it is given, accumulate into tensors allocated
before the first step, read anything that changes between epochs (learning rate, KL
weight) from device tensors rather than Python numbers, never synchronise with the
host, and start with ``zero_grad(set_to_none=True)`` so recorded backward passes write
their gradients instead of adding to old ones. The optimiser needs ``capturable=True``
and a tensor learning rate (:func:`optimiser_options`); autocast must not cache casts
(``ml.train.autocast`` does not).

On by default on CUDA (``cuda_graphs`` in the training configs): the GPU tests that
compare recorded with eager steps (``tests/ml/test_step_graph.py``) pass on an H100, and
on 20,000 spectra both ways train models of the same quality; docs/ml.md, "Issue 18,
fifth round", has the figures.

A batch of another shape (an epoch's last, shorter one) runs eagerly, with the same
weights and optimiser state. A step that cannot be recorded (recording runs nothing,
so no weight or optimiser state has changed) warns and the run goes on eagerly. On a
CPU every step runs eagerly, so CPU results are those of a plain loop.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before recording (cuDNN picks algorithms,
# the optimiser allocates its state), as CUDA graph capture requires


def graphs_usable(device: torch.device, wanted: bool) -> bool:
    """Whether training on ``device`` replays its steps from CUDA graphs."""
    return wanted and device.type == "cuda"


def optimiser_options(device: torch.device, learning_rate: float,
                      graphed: bool) -> dict[str, Any]:
    """Adam(W) arguments: the fused kernel on CUDA; for a recorded step also a learning
    rate held in a device tensor (the scheduler updates it in place) and capturable
    state. On a CPU: torch's defaults, so CPU results stay as they were."""
    if device.type != "cuda":
        return {"lr": learning_rate}
    if not graphed:
        return {"lr": learning_rate, "fused": True}
    return {"lr": torch.tensor(learning_rate, device=device), "fused": True,
            "capturable": True}


class TrainingStep:
    """Calls ``step(rows)`` for each batch of row indices, from a CUDA graph when it can.

    ``rows`` is an integer tensor (1-D; a leading axis for stacked ensemble members, and
    one of 2 before the batch axis for coverage donors: ml.train.epoch_order) on the
    training device; ``shape`` is the full batch's shape, the one that is recorded.
    """

    def __init__(self, step: Callable[[torch.Tensor], None], shape: tuple[int, ...],
                 device: torch.device, enabled: bool) -> None:
        self.step = step
        self.shape = tuple(shape)
        self.enabled = graphs_usable(device, enabled)
        self.warm = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.rows: torch.Tensor | None = None
        self.side = torch.cuda.Stream(device) if self.enabled else None

    @property
    def recorded(self) -> bool:
        """Whether the step has been recorded (and further full batches replay it)."""
        return self.graph is not None and self.enabled

    def __call__(self, rows: torch.Tensor) -> None:
        if not self.enabled or tuple(rows.shape) != self.shape:
            self.step(rows)
            return
        if self.warm < WARMUP_STEPS:
            assert self.side is not None
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                self.step(rows)
            torch.cuda.current_stream().wait_stream(self.side)
            self.warm += 1
            return
        if self.graph is None:
            self.rows = rows.clone()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):  # records without running: replayed below
                    self.step(self.rows)
            except RuntimeError as error:  # a step that cannot be recorded: stay eager
                warnings.warn(f"training continues without a CUDA graph: the step could "
                              f"not be recorded ({error})", RuntimeWarning, stacklevel=2)
                self.enabled = False
                self.step(rows)
                return
            self.graph = graph
        else:
            assert self.rows is not None
            self.rows.copy_(rows)
        self.graph.replay()
