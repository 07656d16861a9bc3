"""Stenosis boxes per frame, read from PASCAL VOC XML (as ADSD ships them), YOLO txt or COCO JSON.

Every reader returns pixel boxes keyed by frame id (the image file name without its suffix), so
that patch extraction never needs to know the format. Problems that make a file unusable raise
LqerError naming the file; problems with single boxes are collected as warnings, because one bad
box in eight thousand frames should not stop a run but must not pass silently either.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from lqer.errors import LqerError

FORMATS = ("voc", "yolo", "coco")


@dataclass(frozen=True)
class Box:
    """A box in pixel coordinates, corners inclusive-exclusive like array slices."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    label: str = "stenosis"

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin

    @property
    def centre(self) -> tuple[float, float]:
        return (self.xmin + self.xmax) / 2, (self.ymin + self.ymax) / 2


def _text(node: ET.Element, tag: str, path: Path) -> str:
    found = node.find(tag)
    if found is None or found.text is None:
        raise LqerError(f"{path}: <{tag}> missing")
    return found.text.strip()


def read_voc(path: str | Path) -> list[Box]:
    """All <object> boxes of one PASCAL VOC file."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise LqerError(f"{path}: empty annotation file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise LqerError(f"{path}: not valid XML ({e})") from None
    boxes = []
    for obj in root.iter("object"):
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise LqerError(f"{path}: <object> without <bndbox>")
        try:
            corners = [float(_text(bndbox, tag, path)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise LqerError(f"{path}: box coordinates must be numbers") from None
        boxes.append(Box(*corners, label=_text(obj, "name", path)))
    return boxes


def read_yolo(
    path: str | Path, width: int, height: int, class_names: list[str] | None = None
) -> list[Box]:
    """One `class cx cy w h` line per box, coordinates relative to the image size.

    An empty file is a frame without objects, as YOLO tools write it.
    """
    path = Path(path)
    boxes = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:5])
        except (ValueError, IndexError):
            raise LqerError(f"{path}:{number}: expected 'class cx cy w h'") from None
        if class_names is not None and not 0 <= cls < len(class_names):
            raise LqerError(f"{path}:{number}: class {cls} has no name in the class list")
        label = class_names[cls] if class_names is not None else str(cls)
        cx, cy, w, h = cx * width, cy * height, w * width, h * height
        boxes.append(Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, label=label))
    return boxes


def read_coco(path: str | Path) -> dict[str, list[Box]]:
    """Boxes of every image listed in a COCO file, keyed by frame id; images without boxes too."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        categories = {c["id"]: c["name"] for c in data.get("categories", [])}
        images = {im["id"]: Path(im["file_name"]).stem for im in data["images"]}
        boxes: dict[str, list[Box]] = {name: [] for name in images.values()}
        for ann in data.get("annotations", []):
            x, y, w, h = (float(v) for v in ann["bbox"])
            label = categories.get(ann["category_id"], str(ann["category_id"]))
            boxes[images[ann["image_id"]]].append(Box(x, y, x + w, y + h, label=label))
    except json.JSONDecodeError as e:
        raise LqerError(f"{path}: not valid JSON ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise LqerError(f"{path}: not a COCO detection file (problem with {e})") from None
    return boxes


def check_boxes(
    frame_id: str, boxes: list[Box], width: int, height: int, warnings: list[str]
) -> list[Box]:
    """Clip boxes that stick out of the image; drop empty or fully outside ones, with a warning."""
    kept = []
    for box in boxes:
        if box.width <= 0 or box.height <= 0:
            warnings.append(f"{frame_id}: empty box {_fmt(box)} dropped")
            continue
        clipped = Box(
            max(box.xmin, 0), max(box.ymin, 0), min(box.xmax, width), min(box.ymax, height),
            box.label,
        )  # fmt: skip
        if clipped.width <= 0 or clipped.height <= 0:
            warnings.append(f"{frame_id}: box {_fmt(box)} lies outside the {width}x{height} image")
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
