"""`lqer scan`, `explain`, `export` and `serve`: a trained model on whole frames, where it
looked, outside Python, and behind a web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.cli import lists
from lqer.cli.options import (
    CheckpointOpt,
    DeviceOpt,
    OnnxOpt,
    OrCheckpointOpt,
    SkipBadOpt,
    ThresholdOpt,
    model_or_onnx,
)
from lqer.errors import as_flags
from lqer.models import FRAME_MODEL, PATCH_MODEL, SERVE_MODEL


def scan(
    paths: Annotated[
        list[Path], typer.Argument(metavar="FRAMES", help="Images, DICOM files, folders.")
    ],
    checkpoint: OrCheckpointOpt = None,
    onnx: OnnxOpt = None,
    out: Annotated[Path, typer.Option(help="Folder for heatmaps, overlays and boxes.")] = Path(
        "scan"
    ),
    sizes: Annotated[
        str,
        typer.Option(
            help="Window sides in frame pixels, e.g. 48,64; a candidate box is the central "
            "half of the window that found it."
        ),
    ] = "48,64",
    stride: Annotated[
        float, typer.Option(help="Step between windows, a fraction of the side.")
    ] = 0.25,
    dense: Annotated[
        bool,
        typer.Option(
            "--dense",
            help="Run the backbone once over the frame per window side (stride 0.5 "
            "or 0.25), not once per window.",
        ),
    ] = False,
    flip: Annotated[
        bool | None,
        typer.Option(
            "--flip/--no-flip",
            help="Detectors: scan each frame and its mirror (twice the time), or not; "
            "default as the detector was shipped.",
        ),
    ] = None,
    frames: Annotated[str | None, typer.Option(help="DICOM frames to scan, e.g. 1,5-9.")] = None,
    annotations: Annotated[
        Path | None, typer.Option(help="Labelled boxes to score the scan against.")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="voc, yolo or coco.")] = "voc",
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    skip_bad: SkipBadOpt = False,
):
    """Find stenosis candidates in whole frames.

    Writes per frame a heatmap (window models), an overlay and the candidate boxes."""
    from lqer.eval.scan import ScanConfig
    from lqer.eval.scan_files import scan_files

    checkpoint = model_or_onnx(checkpoint, onnx, FRAME_MODEL)
    cfg = ScanConfig(tuple(lists.numbers(sizes, "--sizes")), stride, dense=dense, flip=flip)
    summary = scan_files(checkpoint, paths, out, cfg, lists.numbers(frames, "--frames"),
                         annotations, format_, threshold, device, onnx=onnx,
                         skip_bad=skip_bad)  # fmt: skip
    typer.echo(
        f"scanned {summary['frames']} frame(s) at {summary['frames_per_second']} frames/s; "
        f"{summary['candidates_above_threshold']} candidate(s) at threshold "
        f"{summary['threshold']:.4g} ({summary['threshold_source']})"
    )
    if "boxes" in summary:
        typer.echo(
            f"labelled stenoses: {summary['found']} of {summary['boxes']} found, "
            f"{summary['fp_per_frame']:.2f} false positives per frame"
        )
    for warning in summary["warnings"]:
        typer.echo(f"warning: {as_flags(warning)}", err=True)
    for skipped in summary["skipped"]:
        typer.echo(f"skipped {skipped['path']}: {skipped['reason']}", err=True)
    typer.echo(f"written to {out}")


def explain(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATCHES", help="Images, DICOM files, folders.")
    ],
    checkpoint: CheckpointOpt = Path(PATCH_MODEL),
    out: Annotated[Path, typer.Option(help="Folder for the overlays and explain.csv.")] = Path(
        "explain"
    ),
    method: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="gradcam or gradcam++ (repeatable); default both."),
    ] = None,
    boxes: Annotated[
        Path | None, typer.Option(help="A scan's boxes.csv: explain its best windows per frame.")
    ] = None,
    top: Annotated[int, typer.Option(help="Windows per frame with --boxes.")] = 5,
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    skip_bad: SkipBadOpt = False,
):
    """Show where the model looked (Grad-CAM, Grad-CAM++).

    Grad-CAM and Grad-CAM++ pictures: where the model looked for stenosis in each patch,
    or in the best windows of a scan (--boxes)."""
    from lqer.eval.explain import METHODS, explain_files

    rows = explain_files(checkpoint, paths, out, tuple(method or METHODS), threshold, device,
                         boxes=boxes, top=top, skip_bad=skip_bad)  # fmt: skip
    positive = sum(r["label"] == "stenosis" for r in rows)
    skipped = sum(r["label"] == "skipped" for r in rows)
    typer.echo(f"explained {len(rows) - skipped} image(s), {positive} called stenosis"
               + f", {skipped} skipped" * bool(skipped) + f"; written to {out}")  # fmt: skip


def export(
    checkpoint: CheckpointOpt,
    out: Annotated[Path, typer.Option(help="The .onnx file to write.")] = Path("model.onnx"),
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled patches for the parity check [default: the bundled ones]."),
    ] = None,
):
    """Export a model to ONNX, checked against PyTorch.

    The whole model, circuit included; fails unless ONNX Runtime matches
    PyTorch within 1e-4 on real patches."""
    from lqer.eval.export import export_onnx

    result = export_onnx(checkpoint, out, data)
    typer.echo(
        f"wrote {result['out']} (opset {result['opset']}); ONNX Runtime matches PyTorch on "
        f"{result['patches']} patches within {result['max_difference']:.1e} in probability"
    )


def serve(
    checkpoint: Annotated[
        Path, typer.Option(help="A best.pt or last.pt file, or shipped weights (lqer models).")
    ] = Path(SERVE_MODEL),
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    frames: Annotated[
        str | None,
        typer.Option(
            help="A whole-frame detector for frames [default: lqer-arcade where it is "
            "installed, else the patch model's window scan]."
        ),
    ] = None,
):
    """Serve a web page and a JSON API (predict, scan, explain).

    The API is documented at /docs."""
    from lqer.models.weights import WEIGHTS
    from lqer.serve.app import serve as run_server

    if frames is None and FRAME_MODEL in WEIGHTS and WEIGHTS[FRAME_MODEL].available:
        frames = FRAME_MODEL
    typer.echo(f"lqer serve: http://{host}:{port}/ (research use only, not a medical device)")
    run_server(checkpoint, host, port, frames)


def register(app: typer.Typer) -> None:
    app.command()(scan)
    app.command()(explain)
    app.command()(export)
    app.command()(serve)
