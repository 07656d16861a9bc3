"""Where a patch classifier looked: Grad-CAM and Grad-CAM++ from pytorch-grad-cam.

The target is the log-odds of stenosis, logit 1 - logit 0: for a two-logit binary model the
gradient of one logit alone also rewards evidence against the other class. The layer is the
deepest convolutional block whose map is still at least `MIN_CELLS` wide at the model's input
size: at 32 px ResNet18's last stage is 1x1, which no map can be read from.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from tqdm import tqdm

from lqer.data.dataset import model_input
from lqer.data.frames import FrameRef, collect_frames, read_frames
from lqer.data.transforms import eval_transform
from lqer.device import pick_device
from lqer.errors import LqerError
from lqer.eval.evaluate import decision, predict_proba
from lqer.eval.predictions import CALLS, SKIPPED
from lqer.eval.scan import window_of
from lqer.guarded_yaml import first_line, shown
from lqer.io import atomic_path, check_own_folder, owned_folder
from lqer.models.checkpoint import load_checkpoint

METHODS = ("gradcam", "gradcam++")
MIN_CELLS = 4
KIND = "explain"  # its output folder is marked as lqer explain's
COLOURS = "jet"


def log_odds(output: torch.Tensor) -> torch.Tensor:
    return output[..., 1] - output[..., 0]


def target_layer(model: nn.Module, image_size: int) -> nn.Module:
    """The last block or convolution, in forward order, whose output is >= MIN_CELLS wide."""
    sizes: dict[nn.Module, int] = {}

    def record(module, _, output) -> None:  # a hook that returned a value would replace output
        sizes[module] = min(output.shape[-2:])

    kinds = BasicBlock | Bottleneck | nn.Conv2d
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, 3, image_size, image_size))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    wide = [m for m, cells in sizes.items() if cells >= MIN_CELLS]
    if not wide:
        raise LqerError(
            f"no layer of this model has a {MIN_CELLS}x{MIN_CELLS} map at {image_size} px"
        )
    return wide[-1]


def cam_maps(
    model: nn.Module, images: torch.Tensor, image_size: int, method: str = "gradcam"
) -> np.ndarray:
    """(N, S, S) maps in [0, 1] for uint8 images (N, 1, S, S) at the model's input size."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    if method not in METHODS:
        raise LqerError(f"`method` must be one of {', '.join(METHODS)}, not {shown(method)}")
    cam_class = GradCAM if method == "gradcam" else GradCAMPlusPlus
    device = next(model.parameters()).device
    x = eval_transform(image_size)(images.to(device))
    model.eval()
    with cam_class(model=model, target_layers=[target_layer(model, image_size)]) as cam:
        return cam(input_tensor=x, targets=[log_odds] * len(x))


def map_at(cam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The map (model input size) stretched over the patch (its own size), in [0, 1]."""
    height, width = shape
    big = Image.fromarray(np.round(cam * 255).astype(np.uint8)).resize((width, height))
    return np.asarray(big, dtype=np.float32) / 255


def picture(patch: np.ndarray, cam: np.ndarray, caption: str = "") -> Image.Image:
    """The patch beside the map over it, each panel about 300 px high, with a colour
    bar: a 42 px thumbnail shows nothing. Matplotlib's object API, so threads may share it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.4, 3.8), dpi=100)
    canvas = FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for ax, title in ((left, "patch"), (right, "Grad-CAM over the patch")):
        ax.imshow(patch, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    shown_map = right.imshow(map_at(cam, patch.shape), cmap=COLOURS, alpha=0.45, vmin=0, vmax=1)
    bar = fig.colorbar(shown_map, ax=right, fraction=0.046, pad=0.03)
    bar.set_label("attribution (0 = none, 1 = the map's maximum)", fontsize=8)
    fig.suptitle(caption, fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.9, top=0.86, bottom=0.02, wspace=0.08)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def output_names(refs: list[FrameRef]) -> dict[FrameRef, str]:
    """A file name stem per frame: its id, or with the folder in front where two frames share
    an id (positive/0025.png and negative/0025.png: positive_0025, negative_0025)."""
    counts = Counter(ref.id for ref in refs)
    names = {ref: ref.id if counts[ref.id] == 1 else f"{ref.path.parent.name}_{ref.id}"
             for ref in refs}  # fmt: skip
    taken = Counter(names.values())
    return {ref: name if taken[name] == 1 else f"{name}_{k}"
            for k, (ref, name) in enumerate(names.items())}  # fmt: skip


def read_windows(boxes: Path, top: int) -> dict[tuple[str, int], list[tuple[int, int, int]]]:
    """The `top` best candidates per frame of a scan's boxes.csv, as windows (x, y, side): a
    candidate is the central half of the window that found it (`lqer.eval.scan`)."""
    try:
        with open(boxes, newline="") as f:
            rows = list(csv.DictReader(f))
        found: dict[tuple[str, int], list] = {}
        for r in sorted(rows, key=lambda r: -float(r["score"])):
            if int(r["w"]) < 1:  # an empty window would give an empty patch to the model
                raise ValueError(f"a box of width {int(r['w'])} at x={r['x']}, y={r['y']}")
            window = window_of(int(r["x"]), int(r["y"]), int(r["w"]))
            found.setdefault((r["source"], int(r["frame"])), []).append(window)
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as e:
        why = first_line(e) if not isinstance(e, KeyError) else f"no column {e}"
        raise LqerError(f"`boxes`: {boxes} is not a boxes.csv of lqer scan ({why})") from None
    return {key: windows[:top] for key, windows in found.items()}


def pieces(ref: FrameRef, name: str, image: np.ndarray, windows: dict | None):
    """(name, x, y, patch): the whole image, or the windows of its scan's best candidates."""
    if windows is None:
        yield name, None, None, image
        return
    height, width = image.shape
    for x, y, side in windows.get((ref.path.name, ref.index), []):
        if side > min(height, width):
            raise LqerError(f"`boxes`: a {side} px window does not fit the {width}x{height} "
                            f"frame {ref.id}")  # fmt: skip
        x, y = min(max(x, 0), width - side), min(max(y, 0), height - side)  # inside the frame
        yield f"{name}_x{x}_y{y}_s{side}", x, y, image[y : y + side, x : x + side]


def explain_files(
    checkpoint: str | Path,
    paths: list[str | Path],
    out: str | Path,
    methods: tuple[str, ...] = METHODS,
    threshold: float | None = None,
    device: str = "auto",
    progress: bool = True,
    boxes: str | Path | None = None,
    top: int = 5,
    skip_bad: bool = False,
) -> list[dict]:
    """Write an overlay per image (or, with a scan's `boxes`, per window of its `top`
    candidates in each frame) and method, and explain.csv: probability and decision."""
    inputs = [*paths, checkpoint, *([boxes] if boxes else [])]
    out = check_own_folder(out, KIND, "`out`", inputs)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise LqerError(f"`method` must be one of {', '.join(METHODS)}, not {shown(bad[0])}")
    windows = read_windows(Path(boxes), top) if boxes else None
    model, cfg, info = load_checkpoint(checkpoint)
    model = model.to(pick_device(device))
    size = cfg.data.image_size
    chosen = decision(checkpoint, info, threshold)
    refs = collect_frames(paths)
    names = output_names(refs)
    with owned_folder(out, KIND):
        rows = []
        skipped: list[tuple[str, str]] | None = [] if skip_bad else None
        frames = read_frames(refs, skipped=skipped)
        for ref, image in tqdm(frames, total=len(refs), disable=not progress, desc="explain"):
            for name, x, y, patch in pieces(ref, names[ref], image, windows):
                small = model_input(patch, size)
                prob = float(predict_proba(model, small, size, next(model.parameters()).device)[0])
                label = CALLS[int(prob >= chosen.threshold)]
                for method in methods:
                    cam = cam_maps(model, small, size, method)[0]
                    where = f"{ref.path.parent.name}/{ref.path.name}"
                    caption = f"{where}: {method}, P(stenosis) {prob:.3f}, {label}"
                    with atomic_path(out / f"{name}_{method}.png") as tmp:
                        picture(patch, cam, caption).save(tmp, format="PNG")
                rows.append({"source": ref.path.name, "frame": ref.index, "id": name,
                             "x": "" if x is None else x, "y": "" if y is None else y,
                             "side": patch.shape[0], "prob_stenosis": round(prob, 7),
                             "label": label})  # fmt: skip
        rows += [{"source": Path(path).name, "frame": "", "id": "", "x": "", "y": "", "side": "",
                  "prob_stenosis": "", "label": SKIPPED} for path, _ in skipped or []]  # fmt: skip
        if not rows:
            raise LqerError(f"`boxes`: {boxes} has no candidate in these frames")
        with atomic_path(out / "explain.csv") as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return rows
