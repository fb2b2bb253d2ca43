"""The strided 1D convolution stack both networks use to read a spectrum."""

from __future__ import annotations

from torch import nn

STRIDE = 4


def conv_stack(n_pixels: int, channels: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """Convolutions that shrink the spectrum 4x per layer; returns (module, flat size).

    Strided convolutions keep the cost linear in the pixel count and low enough to train
    on a laptop CPU, while the first layer still sees single absorption lines.
    """
    layers: list[nn.Module] = []
    length, previous = n_pixels, 2
    for i, width in enumerate(channels):
        kernel = 9 if i == 0 else 5
        layers += [nn.Conv1d(previous, width, kernel, stride=STRIDE, padding=kernel // 2),
                   nn.GELU()]
        length = (length + 2 * (kernel // 2) - kernel) // STRIDE + 1
        previous = width
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), previous * length
