"""Batch transforms on uint8 image tensors (B, 1, S, S), on whatever device they live.

torchvision's v2 transforms draw one set of random parameters per call, so a batched call would
crop and flip every image alike. These draw per sample, which lets augmentation run on the GPU
over a whole batch instead of in a DataLoader worker pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import Compose

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomCrop:
    """Pad by `padding` (reflect) and crop back to the input size at a random offset per sample."""

    def __init__(self, padding: int):
        self.padding = padding

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            return x
        b, c, h, w = x.shape
        padded = F.pad(x.float(), [self.padding] * 4, mode="reflect").to(x.dtype)
        top = torch.randint(0, 2 * self.padding + 1, (b, 1, 1), device=x.device)
        left = torch.randint(0, 2 * self.padding + 1, (b, 1, 1), device=x.device)
        rows = (top + torch.arange(h, device=x.device)[None, :, None]).expand(b, h, w)
        cols = (left + torch.arange(w, device=x.device)[None, None, :]).expand(b, h, w)
        index = (rows * padded.shape[-1] + cols).reshape(b, 1, h * w).expand(b, c, h * w)
        return padded.flatten(2).gather(2, index).reshape(b, c, h, w)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
        return torch.where(flip, x.flip(-1), x)


class IntensityJitter:
    """Per-sample brightness and contrast factors in [1 - s, 1 + s]; float input in [0, 1]."""

    def __init__(self, brightness: float = 0.1, contrast: float = 0.1):
        self.brightness = brightness
        self.contrast = contrast

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], 1, 1, 1)
        b = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * self.brightness
        c = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * self.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x * b - mean * b) * c + mean * b).clamp(0, 1)


class RandomGamma:
    """x ** gamma per sample, log-uniform in [1 / g, g]: another system's tone curve."""

    def __init__(self, g: float = 1.5):
        self.log_g = torch.log(torch.tensor(g)).item()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.rand(x.shape[0], 1, 1, 1, device=x.device) * 2 - 1
        return x.clamp_min(1e-6).pow(torch.exp(u * self.log_g))


class RandomBlur:
    """With probability `p`, a Gaussian blur of sigma uniform in (0, `max_sigma`] pixels per
    sample (one grouped convolution): a softer detector or a smaller stored size."""

    def __init__(self, max_sigma: float = 1.0, p: float = 0.3, radius: int = 2):
        self.max_sigma, self.p, self.radius = max_sigma, p, radius

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        sigma = torch.rand(b, 1, device=x.device).clamp_min(0.05) * self.max_sigma
        offsets = torch.arange(-self.radius, self.radius + 1, device=x.device, dtype=x.dtype)
        line = torch.exp(-(offsets**2) / (2 * sigma**2))
        line = line / line.sum(1, keepdim=True)  # (B, K): a separable kernel per sample
        kernel = (line[:, :, None] * line[:, None, :]).repeat_interleave(c, 0)[:, None]
        padded = F.pad(x.reshape(1, b * c, *x.shape[2:]), [self.radius] * 4, mode="reflect")
        blurred = F.conv2d(padded, kernel, groups=b * c).reshape(x.shape)
        keep = torch.rand(b, 1, 1, 1, device=x.device) < self.p
        return torch.where(keep, blurred, x)


class RandomNoise:
    """Additive Gaussian noise, its standard deviation uniform in [0, `max_std`] per sample:
    quantum noise of a lower dose."""

    def __init__(self, max_std: float = 0.03):
        self.max_std = max_std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.rand(x.shape[0], 1, 1, 1, device=x.device) * self.max_std
        return (x + torch.randn_like(x) * std).clamp(0, 1)


class RandomCLAHE:
    """With probability `p` per sample, contrast-limited adaptive histogram equalisation
    (kornia's) on a `grid` x `grid` of tiles: the local contrast some X-ray systems give every
    frame before it is stored."""

    def __init__(self, p: float = 0.3, clip_limit: float = 2.0, grid: int = 2):
        from kornia.enhance import equalize_clahe  # here: kornia loads only for this recipe

        self.p, self.clip_limit, self.grid = p, clip_limit, grid
        self.equalize = equalize_clahe

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.rand(x.shape[0], device=x.device) < self.p
        if not keep.any():
            return x
        out = x.clone()
        out[keep] = self.equalize(x[keep], self.clip_limit, (self.grid, self.grid))
        return out


class ToFloat:
    """uint8 -> float in [0, 1]."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255)


def resize(
    x: torch.Tensor, size: int | tuple[int, int], chunk: int = 1024, mode: str = "bilinear"
) -> torch.Tensor:
    """Images (B, C, H, W) to S x S (or to (H', W')), bilinear with antialiasing, `chunk`
    images at a time to bound the float copy. uint8 images stay uint8, rounded; float ones stay
    float. The one resize: decoding, packs, dense scans, the model's input and (`mode="area"`,
    block means) the audit's descriptors go through it."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if x.shape[-2:] == size:
        return x
    as_float = x.is_floating_point()
    parts = []
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        part = part if as_float else part.float()
        if mode == "area":
            part = F.interpolate(part, size=size, mode="area")
        else:
            part = F.interpolate(part, size=size, mode="bilinear", antialias=True)
        parts.append(part if as_float else part.round().clamp(0, 255).to(x.dtype))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class Resize:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return resize(x, self.size)


class NormalizeRGB:
    """Grayscale -> three equal channels, standardised with ImageNet statistics."""

    def __init__(self):
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self._stats:  # once per device: a copy per batch would stall a GPU
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            self._stats[x.device] = mean, std
        mean, std = self._stats[x.device]
        return (x.expand(-1, 3, -1, -1) - mean) / std


def augmentation(image_size: int, intensity: str = "mild") -> Compose:
    """The paper's training augmentation: random crop, horizontal flip, mild intensity jitter.
    `intensity="sites"` widens the jitter and adds gamma, blur and noise, as other X-ray
    systems differ (issue 24's transfer recipe); `"sites-clahe"` adds CLAHE to those.

    uint8 in, float in [0, 1] out, ready for `standardize`.
    """
    geometry = [RandomCrop(padding=max(1, image_size // 16)), RandomHorizontalFlip(), ToFloat()]
    if intensity == "mild":
        return Compose([*geometry, IntensityJitter(brightness=0.1, contrast=0.1)])
    sites = [RandomGamma(1.5), IntensityJitter(0.2, 0.3), RandomBlur(), RandomNoise()]
    if intensity == "sites":
        return Compose([*geometry, *sites])
    if intensity == "sites-clahe":
        return Compose([*geometry, RandomCLAHE(), *sites])
    raise ValueError(f"train.intensity must be 'mild', 'sites' or 'sites-clahe', got {intensity!r}")


def standardize(image_size: int) -> Compose:
    """Float images in [0, 1] -> the backbone's input."""
    return Compose([Resize(image_size), NormalizeRGB()])


def eval_transform(image_size: int) -> Compose:
    return Compose([ToFloat(), standardize(image_size)])


class PatchTransform:
    """What a shipped model's `transforms()` gives, as torchvision's weights do: a patch as a
    PIL image, a numpy array or a tensor, one (H, W) / (C, H, W) or a batch (N, C, H, W),
    8-bit or float in [0, 1] -> the model's input, (3, S, S) or (N, 3, S, S). Colour becomes
    gray and the patch is resized exactly as `lqer predict` reads a file."""

    def __init__(self, image_size: int):
        self.image_size = image_size
        self.to_model = eval_transform(image_size)

    def __call__(self, image) -> torch.Tensor:
        batch, single = gray_batch(image)
        out = self.to_model(resize(batch, self.image_size))
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"PatchTransform(image_size={self.image_size})"


def gray_batch(image) -> tuple[torch.Tensor, bool]:
    """(N, 1, H, W) uint8, and whether one image was given."""
    import numpy as np
    from PIL import Image

    from lqer.data.images import to_uint8_gray

    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB") if image.mode in ("P", "PA", "CMYK") else image)
    if isinstance(image, np.ndarray):
        return torch.from_numpy(to_uint8_gray(image).copy())[None, None], True
    if not isinstance(image, torch.Tensor) or image.ndim not in (2, 3, 4):
        raise TypeError(f"a patch is a PIL image, an array or a 2-4 dim tensor, not {image!r:.60}")
    single = image.ndim < 4
    x = image.reshape(1, 1, *image.shape) if image.ndim == 2 else image
    x = x[None] if x.ndim == 3 else x
    if x.is_floating_point():
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[1] == 3:  # ITU-R 601 luma, as PIL's convert("L") and to_uint8_gray
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = (x.double() * luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    elif x.shape[1] != 1:
        raise TypeError(f"a patch has 1 or 3 channels, not {x.shape[1]}")
    return x, single
