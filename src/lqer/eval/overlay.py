"""A scanned frame as a reader sees it: the heatmap over the frame, each candidate with its
score, the annotated stenoses, and a header that says which file it is and what each colour
means. The CLI's overlays and the page's frame view are this one picture."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANDIDATE = "lime"
ANNOTATED = "cyan"
HEATMAP = "inferno"
HEADER = 40  # px above the frame for the title and the legend


def overlay(
    frame: np.ndarray,
    heatmap: np.ndarray | None,
    candidates: list[tuple[tuple[int, int, int, int], float]],
    annotated: list[tuple[int, int, int, int]] = (),
    title: str = "",
) -> Image.Image:
    """The frame (H, W) uint8 in gray, the heatmap in [0, 1] over it (transparent where it is
    low; None for a detector), candidate boxes (x0, y0, x1, y1) with their scores, annotated
    boxes, and the header."""
    from matplotlib import colormaps

    gray = np.repeat(frame[..., None].astype(np.float32) / 255, 3, axis=2)
    if heatmap is not None:
        colour = colormaps[HEATMAP](heatmap)[..., :3]
        alpha = 0.6 * heatmap[..., None]
        gray = (1 - alpha) * gray + alpha * colour
    height, width = frame.shape
    image = Image.new("RGB", (max(width, 360), height + HEADER), "black")
    image.paste(Image.fromarray(np.round(255 * gray).astype(np.uint8)), (0, HEADER))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11)
    for x0, y0, x1, y1 in annotated:
        draw.rectangle([x0, y0 + HEADER, x1, y1 + HEADER], outline=ANNOTATED, width=2)
    for (x0, y0, x1, y1), score in candidates:
        draw.rectangle([x0, y0 + HEADER, x1, y1 + HEADER], outline=CANDIDATE, width=2)
        text = f"{score:.2f}"
        top = max(y0 + HEADER - 13, HEADER)
        draw.rectangle(draw.textbbox((x0, top), text, font=font), fill="black")
        draw.text((x0, top), text, fill=CANDIDATE, font=font)
    legend(draw, font, title, heatmap is not None, bool(annotated))
    return image


def legend(draw: ImageDraw.ImageDraw, font, title: str, heat: bool, annotated: bool) -> None:
    """Line 1: the title; line 2: what each box colour is, and the heatmap's colour bar."""
    from matplotlib import colormaps

    draw.text((4, 3), title, fill="white", font=font)
    x, y = 4, 22
    keys = [(CANDIDATE, "candidate (score)")] + [(ANNOTATED, "annotated stenosis")] * annotated
    for colour, text in keys:
        draw.rectangle([x, y + 2, x + 10, y + 10], outline=colour, width=2)
        draw.text((x + 14, y), text, fill="white", font=font)
        x += 22 + int(draw.textlength(text, font=font))
    if heat:
        draw.text((x, y), "heatmap 0", fill="white", font=font)
        x += 4 + int(draw.textlength("heatmap 0", font=font))
        ramp = colormaps[HEATMAP](np.linspace(0, 1, 80))[:, :3]
        for k, rgb in enumerate(np.round(255 * ramp).astype(int)):
            draw.line([x + k, y + 1, x + k, y + 11], fill=tuple(rgb))
        draw.text((x + 84, y), "1", fill="white", font=font)
