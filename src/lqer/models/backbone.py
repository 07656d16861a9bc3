"""ResNet18 feature extractor with `imagenet`, `none` or a local state dict as weights."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from lqer.errors import LqerError

FEATURE_DIM = 512


def resnet18_backbone(weights: str = "none") -> nn.Module:
    """ResNet18 with its classification head replaced by the identity: images -> (B, 512)."""
    if weights == "imagenet":
        model = _imagenet_resnet18()
    elif weights == "none":
        model = resnet18(weights=None)
    else:
        model = resnet18(weights=None)
        _load_state_dict(model, Path(weights))
    model.fc = nn.Identity()
    return model


def check_weights(weights: str) -> None:
    """Fetch or find the backbone's weights now: before minutes of decoding data, not after."""
    if weights == "imagenet":
        _imagenet_resnet18()
    elif weights != "none":
        _weights_file(Path(weights))


def _imagenet_resnet18() -> nn.Module:
    spec = ResNet18_Weights.IMAGENET1K_V1
    try:
        return resnet18(weights=spec)
    except Exception as e:  # no network, proxy errors, a corrupt cache ...
        where = Path(torch.hub.get_dir()) / "checkpoints" / Path(spec.url).name
        raise LqerError(
            f"ImageNet weights for ResNet18 could not be loaded ({type(e).__name__}); "
            f"download {spec.url} to {where}, or set `weights` to a file or 'none'"
        ) from None


def _weights_file(path: Path) -> None:
    if not path.is_file():
        raise LqerError(f"`weights`: {path} is neither 'imagenet', 'none' nor an existing file")


def _load_state_dict(model: nn.Module, path: Path) -> None:
    _weights_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise LqerError(f"`weights`: cannot read {path} as a PyTorch state dict ({e})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LqerError(f"`weights`: {path} does not hold a state dict")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        key = (missing or unexpected)[0]
        raise LqerError(
            f"`weights`: {path} is not a ResNet18 state dict "
            f"({len(missing)} missing and {len(unexpected)} unexpected keys, e.g. {key!r})"
        )
