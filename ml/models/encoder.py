"""The strided 1D convolution stack both networks use to read a spectrum."""

from __future__ import annotations

import torch
from torch import nn

STRIDE = 2


def conv_stack(n_pixels: int, channels: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """Convolutions that halve the spectrum per layer; returns (module, flat size).

    Stride 2 with kernel 5 (7 on the first layer) keeps neighbouring outputs overlapping,
    so line depths and positions survive to the deeper layers at ~2 pixels per
    resolution element, while the cost stays linear in the pixel count.
    """
    layers: list[nn.Module] = []
    length, previous = n_pixels, 2
    for i, width in enumerate(channels):
        kernel = 7 if i == 0 else 5
        layers += [nn.Conv1d(previous, width, kernel, stride=STRIDE, padding=kernel // 2),
                   nn.GELU()]
        length = (length + 2 * (kernel // 2) - kernel) // STRIDE + 1
        previous = width
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), previous * length


def float32_output(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` with the last layer in float32 even under bf16 autocast.

    Output layers stay float32: bf16 keeps ~3 significant digits, so a decoded pixel
    would carry ~0.002 of rounding, close to the noise at S/N 200, and a standardised
    label ~0.4 % of its training spread.
    """
    *body, last = layers
    for layer in body:
        x = layer(x)
    if not torch.is_autocast_enabled(x.device.type):
        return last(x)
    with torch.autocast(x.device.type, enabled=False):
        return last(x.float())
