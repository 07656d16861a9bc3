"""What `lqer serve` does with its models, apart from the web: read an upload, predict, explain
and scan. The web layer (`lqer.serve.app`) only translates.

Safe by default: uploads are limited in bytes, in pixels per frame and in decoded pixels in all
(read from the header before decoding), their type is decided by their first bytes, never by
their name, and each lives only in a temporary folder of its request that is always removed.
Only pixel data is read from DICOM, so no response can carry a patient's name, ids or dates.
"""

import base64
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lqer.data.dataset import model_input
from lqer.data.dicom import dicom_shape, is_dicom
from lqer.data.frames import frame_refs, read_frames
from lqer.data.images import BadImage, image_shape
from lqer.data.screen import screen
from lqer.errors import LqerError
from lqer.eval.evaluate import decision, predict_proba
from lqer.eval.explain import cam_maps, picture
from lqer.eval.overlay import overlay
from lqer.eval.predictions import CALLS
from lqer.eval.scan import ScanConfig, scan_frame
from lqer.models import SERVE_MODEL
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect_frame, load_detector
from lqer.models.weights import shipped
from lqer.serve.queue import BadUpload, FairLock, Limits

FRAME_SIDE = 200  # uploads at least this wide and high are scanned as frames by the page
SCAN_BATCH = 256  # windows scored between looks at the client and the clock
RESEARCH_ONLY = "Research use only. Not a medical device; not for diagnosis or treatment."
# first bytes -> the suffix the readers expect; DICOM has "DICM" after a 128-byte preamble
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", ".png"), (0, b"\xff\xd8\xff", ".jpg"), (0, b"BM", ".bmp"),
    (0, b"II*\x00", ".tif"), (0, b"MM\x00*", ".tif"), (128, b"DICM", ".dcm"),
)  # fmt: skip


def sniff(data: bytes) -> str:
    """The suffix of the upload's format, from its content."""
    if not data:
        raise BadUpload(400, "the upload is empty")
    for offset, magic, suffix in SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return suffix
    raise BadUpload(415, "not an image: expected PNG, JPEG, BMP, TIFF or DICOM content")


@dataclass(frozen=True)
class Patches:
    """An upload read for predict: each frame's model input and screening, not the frames."""

    inputs: torch.Tensor  # (N, 1, S, S) uint8
    warnings: list[str | None]
    height: int
    width: int


class Service:
    """The model and what the API does with it; the web layer only translates."""

    def __init__(self, checkpoint: str | Path = SERVE_MODEL, limits: Limits | None = None,
                 scan: ScanConfig | None = None,
                 frames: str | Path | None = None):  # fmt: skip
        self.model, self.cfg, self.info = load_checkpoint(checkpoint)
        self.model.eval()
        self.checkpoint = str(checkpoint)
        self.size = self.cfg.data.image_size
        self.decision = decision(checkpoint, self.info, None)
        # whole frames go to a detector where one is given (`lqer-arcade`), else the patch
        # classifier slides its windows over them
        self.detector = load_detector(frames) if frames is not None else None
        if frames is not None and self.detector is None:
            raise LqerError(f"`frames`: {frames} is not a whole-frame detector")
        self.frames_name = str(frames) if frames is not None else self.checkpoint
        self.limits = limits or Limits()
        self.scan_cfg = scan or ScanConfig()
        self.model_lock = FairLock()  # one forward pass at a time (GradCAM hooks the model)

    def card(self) -> dict[str, Any]:
        entry = shipped(self.checkpoint)
        meta = entry.meta if entry is not None else {}
        return {
            "name": self.checkpoint, "model": self.cfg.model.name, "input_size": self.size,
            "threshold": self.decision.threshold, "threshold_source": self.decision.why,
            "training_data": meta.get("training_data"), "test_split": meta.get("test_split"),
            "metrics": meta.get("metrics", {}).get("test"),
            "intervals": meta.get("metrics", {}).get("test_intervals"),
            "licence": meta.get("licence"), "notice": RESEARCH_ONLY,
            "frame_model": self.frames_name, "frame_limits": self.frame_limits(),
        }  # fmt: skip

    def frame_limits(self) -> str:
        """What a whole-frame result can be trusted for, from the frame model's own figures."""
        entry = shipped(self.frames_name) if self.detector is not None else None
        test = (entry.meta.get("metrics") or {}).get("test") if entry is not None else None
        if test:
            return (f"{self.frames_name} found {test['sensitivity']:.0%} of the annotated "
                    f"stenoses at {test['fp_per_frame']:.1f} false candidate(s) per frame on "
                    f"{entry.meta.get('test_split')}: every box is a candidate to review, and "
                    "a stenosis without a box is not ruled out.")  # fmt: skip
        if self.detector is not None:
            return "a detector without stored test figures: boxes are candidates to review."
        return (
            "a patch classifier slid over the frame: it was trained on patches cut around "
            "known lesions, not on whole frames, and marks many healthy vessel segments, "
            "the catheter and the frame border. Boxes are candidates to review."
        )

    def frames(self, data: bytes) -> list[np.ndarray]:
        """The upload's frames as uint8 arrays; its file exists only inside this call."""
        if len(data) > self.limits.upload_bytes:
            raise BadUpload(413, f"the upload is over {self.limits.upload_bytes} bytes")
        suffix = sniff(data)
        with tempfile.TemporaryDirectory(prefix="lqer-upload-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                self._check_size(path)
                refs = frame_refs(path)
                return [image for _, image in read_frames(refs, self.limits.pixels)]
            except (BadImage, LqerError) as e:
                message = str(e).replace(str(path), "the upload").removeprefix("the upload: ")
                raise BadUpload(422, f"cannot read the upload: {message}") from None

    def _check_size(self, path: Path) -> None:
        """Refuse, from the header, an upload whose frames would be too many or too large."""
        frames, height, width = dicom_shape(path) if is_dicom(path) else (1, *image_shape(path))
        limits, total = self.limits, frames * height * width
        if frames > limits.frames:
            raise BadUpload(413, f"{frames} frames; at most {limits.frames}")
        if height * width > limits.pixels:
            raise BadUpload(422, f"{width}x{height} pixels is over the limit of {limits.pixels}")
        if total > limits.decoded_pixels:
            raise BadUpload(413, f"{frames} frames of {width}x{height} decode to {total} pixels; "
                            f"at most {limits.decoded_pixels}")  # fmt: skip

    def patch_input(self, image: np.ndarray) -> torch.Tensor:
        """(1, 1, S, S): the resize that `lqer predict` applies to a decoded file."""
        return model_input(image, self.size)

    def read_patches(self, data: bytes) -> Patches:
        frames = self.frames(data)
        inputs = torch.cat([self.patch_input(f) for f in frames])
        return Patches(inputs, [screen(f) for f in frames], *frames[0].shape)

    def read_frame(self, data: bytes, index: int) -> tuple[np.ndarray, int]:
        """Frame `index` of the upload and how many it has; the others are let go."""
        frames = self.frames(data)
        return self._frame(frames, index), len(frames)

    def score(self, inputs: torch.Tensor) -> np.ndarray:
        """Probabilities of (N, 1, S, S) uint8 inputs: one forward pass, the model to itself."""
        with self.model_lock:
            return predict_proba(self.model, inputs, self.size, "cpu", max(1, len(inputs)))

    def predicted(self, patches: Patches, probs: np.ndarray) -> dict[str, Any]:
        """Probability, call and screening per frame; `kind` says whether the upload looks like
        a patch (P-ADSD's are 32-166 px) or a whole frame, which the page then scans."""
        height, width = patches.height, patches.width
        kind = "frame" if min(height, width) >= FRAME_SIDE else "patch"
        frames = [{**self._call(float(p)), "warning": warning}
                  for p, warning in zip(probs, patches.warnings, strict=True)]  # fmt: skip
        return {**self._header(), "kind": kind, "width": width, "height": height,
                "n_frames": len(frames), "frames": frames}  # fmt: skip

    def explain(self, image: np.ndarray) -> dict[str, Any]:
        small = self.patch_input(image)
        with self.model_lock:
            prob = float(predict_proba(self.model, small, self.size)[0])
            cam = cam_maps(self.model, small, self.size)[0]
        caption = f"P(stenosis) {prob:.3f}"
        return {
            **self._call(prob),
            **self._header(),
            "overlay_png": png(picture(image, cam, caption)),
        }

    def scan(
        self, image: np.ndarray, frame: int, n_frames: int, check=lambda: None, name: str = ""
    ) -> dict:
        """Heatmap and candidate boxes of one frame; `check` runs between batches of windows
        and raises to stop the scan (its client left, its time ran out)."""

        def score(windows: torch.Tensor) -> np.ndarray:
            parts = []
            for part in windows.split(SCAN_BATCH):
                check()
                parts.append(self.score(part))  # predictions may take the model in between
            return np.concatenate(parts)

        chosen = self.decision
        try:
            if self.detector is not None:
                model, detector_cfg, info = self.detector
                chosen = decision(self.frames_name, info, None)
                check()
                with self.model_lock:
                    found = detect_frame(model, image, detector_cfg)
                heatmap = None  # a detector gives boxes alone
            else:
                heatmap, found = scan_frame(score, image, self.size, self.scan_cfg)
        except LqerError as e:  # a frame smaller than the window
            raise BadUpload(422, str(e)) from None
        kept = [d for d in found if d.score >= chosen.threshold]
        boxes = [(d.corners, d.score) for d in kept]
        where = f"{name} " * bool(name) + f"frame {frame + 1} of {n_frames}"
        title = f"{where}: {len(kept)} candidate(s) at threshold {chosen.threshold:.3g}"
        return {
            **self._header(), "model": self.frames_name, "threshold": chosen.threshold,
            "file": name, "frame": frame, "n_frames": n_frames,
            "width": image.shape[1], "height": image.shape[0],
            "max_score": max((d.score for d in found), default=0.0),
            "boxes": [{"x": d.x, "y": d.y, "w": d.w, "h": d.h, "score": d.score} for d in kept],
            "warning": screen(image, patch_side=None),  # a scan cuts its own patches
            "overlay_png": png(overlay(image, heatmap, boxes, title=title)),
        }  # fmt: skip

    def _frame(self, frames: list[np.ndarray], index: int) -> np.ndarray:
        if not 0 <= index < len(frames):
            raise BadUpload(422, f"frame {index} asked for; the upload has {len(frames)}")
        return frames[index]

    def _call(self, prob: float) -> dict[str, Any]:
        stenosis = prob >= self.decision.threshold
        return {"prob_stenosis": round(prob, 7), "label": CALLS[int(stenosis)]}

    def _header(self) -> dict[str, Any]:
        return {"model": self.checkpoint, "threshold": self.decision.threshold,
                "notice": RESEARCH_ONLY}  # fmt: skip


def png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
