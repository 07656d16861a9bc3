"""Gradients by the parameter-shift rule, the way they are taken on quantum hardware.

Every parameter of the circuit enters through one rotation exp(-i t P / 2) with a Pauli P (RX,
RY, and each of the three angles of Rot = RZ RY RZ), so each expectation f depends on it as
a + b cos(t) + c sin(t), and df/dt = (f(t + pi/2) - f(t - pi/2)) / 2 exactly. This holds with
the noise channels too, since they do not depend on t; with shots it is an unbiased estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Measure = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SHIFT = math.pi / 2


class ParameterShift(torch.autograd.Function):
    """measure(angles (B, L, n), weights) -> (B, n_out), differentiated by shifted evaluations.

    `measure` is run without autograd; it may be any backend, noisy or sampled. Each encoded
    angle of each layer is shifted on its own; with re-uploading, autograd then sums the layers.
    """

    @staticmethod
    def forward(ctx, angles: torch.Tensor, weights: torch.Tensor, measure: Measure):
        ctx.measure = measure
        ctx.save_for_backward(angles, weights)
        return measure(angles, weights)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        angles, weights = ctx.saved_tensors
        grad_angles = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_angles = angle_gradient(ctx.measure, angles, weights, grad_output)
        if ctx.needs_input_grad[1]:
            grad_weights = weight_gradient(ctx.measure, angles, weights, grad_output)
        return grad_angles, grad_weights, None


def parameter_shift(measure: Measure, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return ParameterShift.apply(angles, weights, measure)


def _shifts(count: int, like: torch.Tensor) -> torch.Tensor:
    """(2 count, count): +pi/2 then -pi/2 on each of `count` parameters in turn."""
    eye = torch.eye(count, dtype=like.dtype, device=like.device)
    return torch.cat([eye, -eye]) * SHIFT


def angle_gradient(
    measure: Measure, angles: torch.Tensor, weights: torch.Tensor, grad_output: torch.Tensor
) -> torch.Tensor:
    """dL/d angles (B, L, n). A sample's output depends only on its own angles, so all samples
    share each shift, and all 2 L n shifts run as one batch of evaluations."""
    batch, shape = angles.shape[0], angles.shape[1:]
    shifts = _shifts(shape.numel(), angles).view(-1, 1, *shape)  # (2 P, 1, L, n)
    shifted = (angles.unsqueeze(0) + shifts).flatten(0, 1)  # (2 P B, L, n)
    out = measure(shifted, weights).view(2, -1, batch, grad_output.shape[-1])
    derivative = (out[0] - out[1]) / 2  # (P, B, n_out)
    grad = torch.einsum("pbo,bo->bp", derivative, grad_output)
    return grad.view(batch, *shape)


def weight_gradient(
    measure: Measure, angles: torch.Tensor, weights: torch.Tensor, grad_output: torch.Tensor
) -> torch.Tensor:
    """dL/d weights: two evaluations of the whole batch per weight."""
    shifts = _shifts(weights.numel(), weights).view(-1, *weights.shape)
    out = torch.stack([measure(angles, weights + shift) for shift in shifts])
    derivative = (out[: weights.numel()] - out[weights.numel() :]) / 2  # (P, B, n_out)
    grad = torch.einsum("pbo,bo->p", derivative, grad_output)
    return grad.view(weights.shape)
