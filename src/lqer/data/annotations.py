"""Stenosis boxes per frame, read from PASCAL VOC XML (as ADSD ships them), YOLO txt or COCO JSON.

Every reader returns pixel boxes keyed by frame id (the image file name without its suffix), so
that patch extraction never needs to know the format. Problems that make a file unusable raise
LqerError naming the file; problems with single boxes are collected as warnings, because one bad
box in eight thousand frames should not stop a run but must not pass silently either.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lqer.errors import LqerError

FORMATS = ("voc", "yolo", "coco")
WHOLE_IMAGE = 0.9  # a box at least this share of both sides covers the whole frame


Ring = tuple[tuple[float, float], ...]  # one closed outline, (x, y) points, not repeated at the end


@dataclass(frozen=True)
class Box:
    """A box in pixel coordinates, corners inclusive-exclusive like array slices.

    `polygon` is the outline a COCO file gives in `segmentation`: one ring per part (COCO
    polygons are parts, not holes), or None where only the box is known (VOC, YOLO, RLE masks).
    """

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    label: str = "stenosis"
    polygon: tuple[Ring, ...] | None = field(default=None, repr=False)  # repr: warnings stay short

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin

    @property
    def centre(self) -> tuple[float, float]:
        return (self.xmin + self.xmax) / 2, (self.ymin + self.ymax) / 2


@dataclass(frozen=True)
class Detection:
    """A candidate a model proposes: a box in frame pixels (top-left corner and size) with the
    model's score; lqer.eval.detection scores candidates against `Box`es."""

    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), as torchvision.ops takes boxes."""
        return self.x, self.y, self.x + self.w, self.y + self.h


def _text(node: ET.Element, tag: str, path: Path) -> str:
    found = node.find(tag)
    if found is None or found.text is None:
        raise LqerError(f"{path}: <{tag}> missing")
    return found.text.strip()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise LqerError(f"{path}: not UTF-8 text (byte {e.start})") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _finite(values: Iterable[object], path: Path | str, what: str = "box") -> list[float]:
    """Numbers for box coordinates; NaN or infinity would only fail later, far from the file."""
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError, OverflowError):
        raise LqerError(f"{path}: {what} coordinates must be numbers") from None
    if not all(math.isfinite(v) for v in numbers):
        raise LqerError(f"{path}: {what} coordinates must be finite numbers")
    return numbers


def read_voc(path: str | Path) -> list[Box]:
    """All <object> boxes of one PASCAL VOC file."""
    return read_voc_with_size(path)[0]


def read_voc_with_size(path: str | Path) -> tuple[list[Box], tuple[int, int] | None]:
    """The boxes of one PASCAL VOC file and its <size> (width, height), if it gives one.

    The size is only a cross-check against the decoded frame, so a missing, zero or garbled
    <size> (labelling tools write all three) is None rather than an error.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise LqerError(f"{path}: empty annotation file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise LqerError(f"{path}: not valid XML ({e})") from None
    except (RecursionError, MemoryError, ValueError, LookupError) as e:  # encodings, nesting
        raise LqerError(f"{path}: not readable XML ({_first_line(e)})") from None
    boxes = []
    for obj in root.iter("object"):
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise LqerError(f"{path}: <object> without <bndbox>")
        tags = ("xmin", "ymin", "xmax", "ymax")
        corners = _finite([_text(bndbox, tag, path) for tag in tags], path)
        boxes.append(Box(*corners, label=_text(obj, "name", path)))
    return boxes, _voc_size(root)


def _voc_size(root: ET.Element) -> tuple[int, int] | None:
    try:
        width, height = (float(root.findtext(f"size/{tag}", "")) for tag in ("width", "height"))
    except ValueError:
        return None
    if not (0 < width < 2**31 and 0 < height < 2**31):  # also False for NaN
        return None
    return round(width), round(height)


def read_yolo(
    path: str | Path, width: int, height: int, class_names: list[str] | None = None
) -> list[Box]:
    """One `class cx cy w h` line per box, coordinates relative to the image size.

    An empty file is a frame without objects, as YOLO tools write it.
    """
    path = Path(path)
    boxes = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            cls = int(fields[0])
        except (ValueError, IndexError):
            raise LqerError(f"{path}:{number}: expected 'class cx cy w h'") from None
        if len(fields) < 5:
            raise LqerError(f"{path}:{number}: expected 'class cx cy w h'")
        cx, cy, w, h = _finite(fields[1:5], f"{path}:{number}")
        if class_names is not None and not 0 <= cls < len(class_names):
            raise LqerError(f"{path}:{number}: class {cls} has no name in the class list")
        label = class_names[cls] if class_names is not None else str(cls)
        cx, cy, w, h = cx * width, cy * height, w * width, h * height
        corners = _finite([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], f"{path}:{number}")
        boxes.append(Box(*corners, label=label))
    return boxes


def read_coco(path: str | Path) -> dict[str, list[Box]]:
    """Boxes of every image listed in a COCO file, keyed by frame id; images without boxes too."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise LqerError(f"{path}: not valid JSON ({e})") from None
    except (RecursionError, ValueError) as e:  # deep nesting, numbers of 5000 digits
        raise LqerError(f"{path}: not readable JSON ({_first_line(e)})") from None
    try:
        if not isinstance(data, dict) or "images" not in data:
            raise KeyError("images")
        categories = {c["id"]: str(c["name"]) for c in _items(data, "categories")}
        images = {im["id"]: Path(im["file_name"]).stem for im in _items(data, "images")}
        boxes: dict[str, list[Box]] = {name: [] for name in images.values()}
        for ann in _items(data, "annotations"):
            image = images.get(ann["image_id"])
            if image is None:
                raise LqerError(f"{path}: an annotation has image_id {ann['image_id']!r}, "
                                "which 'images' does not list")  # fmt: skip
            if not isinstance(ann["bbox"], list) or len(ann["bbox"]) != 4:
                raise TypeError("'bbox', which must be [x, y, width, height]")
            x, y, w, h = _finite(ann["bbox"], path)
            label = categories.get(ann["category_id"], str(ann["category_id"]))
            corners = _finite([x, y, x + w, y + h], path)
            boxes[image].append(Box(*corners, label=label, polygon=_polygon(ann, path)))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise LqerError(f"{path}: not a COCO detection file (problem with {e})") from None
    return boxes


def _polygon(ann: dict, path: Path) -> tuple[Ring, ...] | None:
    """The rings of an annotation's COCO polygon `segmentation` ([[x1, y1, x2, y2, ...], ...]).

    Rings of under 3 points (no area) are dropped. An RLE mask (a dict), an absent or empty
    segmentation, or no ring left gives None: the box stands in for the outline.
    """
    segmentation = ann.get("segmentation")
    if not isinstance(segmentation, list):
        return None
    rings = []
    for flat in segmentation:
        if not isinstance(flat, list) or len(flat) % 2:
            raise TypeError("'segmentation', which must be lists of x, y numbers")
        numbers = _finite(flat, path, "segmentation")
        if len(numbers) >= 6:
            rings.append(tuple(zip(numbers[::2], numbers[1::2], strict=True)))
    return tuple(rings) or None


def _items(data: dict, key: str) -> list[dict]:
    """A list of objects under `key`; an absent key is an empty list."""
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise TypeError(f"'{key}'")
    return items


def check_boxes(
    frame_id: str, boxes: list[Box], width: int, height: int, warnings: list[str]
) -> list[Box]:
    """Clip boxes that stick out of the image; drop empty, fully outside and whole-image ones,
    with a warning.

    A box over (nearly) the whole frame is a frame-level label, not a stenosis location: it
    leaves no room for a patch, and every negative beside the other boxes would overlap it.
    """
    kept = []
    for box in boxes:
        if box.width <= 0 or box.height <= 0:
            warnings.append(f"{frame_id}: empty box {_fmt(box)} dropped")
            continue
        clipped = Box(
            max(box.xmin, 0), max(box.ymin, 0), min(box.xmax, width), min(box.ymax, height),
            box.label, box.polygon,
        )  # fmt: skip
        if clipped.width <= 0 or clipped.height <= 0:
            warnings.append(f"{frame_id}: box {_fmt(box)} lies outside the {width}x{height} image")
            continue
        if clipped.width >= WHOLE_IMAGE * width and clipped.height >= WHOLE_IMAGE * height:
            warnings.append(
                f"{frame_id}: box {_fmt(box)} covers (nearly) the whole {width}x{height} image; "
                "dropped, since no patch fits around it"
            )
            continue
        if clipped != box:
            warnings.append(f"{frame_id}: box {_fmt(box)} clipped to the {width}x{height} image")
        kept.append(clipped)
    return kept


def _fmt(box: Box) -> str:
    return f"({box.xmin:g},{box.ymin:g})-({box.xmax:g},{box.ymax:g})"


def find_annotation_files(folder: str | Path, fmt: str) -> dict[str, Path]:
    """Per-frame annotation files (VOC .xml, YOLO .txt) in `folder`, keyed by frame id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LqerError(f"annotation folder not found: {folder}")
    suffix = {"voc": ".xml", "yolo": ".txt"}[fmt]
    files = {p.stem: p for p in sorted(folder.rglob(f"*{suffix}")) if not p.name.startswith(".")}
    if fmt == "yolo":
        files.pop("classes", None)  # the class list that YOLO exports put beside the labels
    return files
