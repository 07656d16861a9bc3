"""`lqer data ...`: build, split, audit and augment patch datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.cli import lists
from lqer.errors import LqerError, as_flags

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("make-patches")
def make_patches(
    frames: Annotated[
        Path, typer.Argument(metavar="FRAMES", help="Folder of frames: BMP/PNG/JPEG/TIFF/DICOM.")
    ],
    annotations: Annotated[
        Path, typer.Option(help="Folder of VOC .xml or YOLO .txt files, or a COCO .json file.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for {positive,negative}/.")],
    format: Annotated[str, typer.Option("--format", help="voc, yolo or coco.")] = "voc",
    label: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Box label meaning stenosis (repeatable); default all."),
    ] = None,
    classes: Annotated[
        Path | None, typer.Option(help="YOLO class names, one per line (classes.txt).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Patch side / longer box side.")] = 2.0,
    min_size: Annotated[int, typer.Option(help="Drop patches smaller than this (pixels).")] = 32,
    size: Annotated[int, typer.Option(help="Output side in pixels; 0 keeps native sizes.")] = 64,
    pattern: Annotated[
        str | None,
        typer.Option(help="Regex, named groups patient/sequence/frame; default ADSD's names."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output folder.")
    ] = False,
    frame_negatives: Annotated[
        int, typer.Option(help="Negatives per frame drawn from the whole frame (0: none).")
    ] = 0,
    negative_mix: Annotated[
        str, typer.Option(help="Their kinds' shares (the catheter counts as vessel).")
    ] = "vessel=0.5,border=0.25,background=0.25",
    seed: Annotated[int, typer.Option(help="Seed of the whole-frame negatives.")] = 0,
    mine: Annotated[
        str | None,
        typer.Option(help="Checkpoint (or shipped weights) whose false candidates are negatives."),
    ] = None,
    mine_per_frame: Annotated[int, typer.Option(help="Mined negatives per frame.")] = 4,
    mine_sizes: Annotated[str, typer.Option(help="Window sides of the mining scan.")] = "48,64",
    mine_stride: Annotated[float, typer.Option(help="Its step, a fraction of the side.")] = 0.25,
    mine_dense: Annotated[
        bool,
        typer.Option("--dense", help="Scan densely (stride 0.5 or 0.25), as `lqer scan --dense`."),
    ] = False,
    device: Annotated[str, typer.Option(help="Device of the mining scan.")] = "auto",
):
    """Cut positive patches at stenosis boxes and negatives beside them, with a manifest;
    optionally negatives from the whole frame and a model's false candidates (--mine)."""
    from lqer.data import negatives, patches

    cfg = patches.PatchConfig(
        scale=scale, min_size=min_size, out_size=size, pattern=pattern,
        labels=tuple(label) if label else None, frame_negatives=frame_negatives,
        negative_mix=negatives.parse_mix(negative_mix), seed=seed,
    )  # fmt: skip
    names = _class_names(classes) if classes else None
    mined = None
    if mine is not None:
        mined = _mine(frames, annotations, out, format, cfg, names, overwrite, mine,
                      mine_per_frame, mine_sizes, mine_stride, mine_dense, device)  # fmt: skip
    summary = patches.make_patches(
        frames, annotations, out, cfg, format, names, overwrite, progress=True, mined=mined
    )
    for warning in summary.warnings[:20]:
        typer.echo(f"warning: {as_flags(warning)}", err=True)
    if len(summary.warnings) > 20:
        typer.echo(f"... {len(summary.warnings)} warnings in all, see {out}/warnings.txt", err=True)
    dropped = ", ".join(f"{n} {why}" for why, n in summary.dropped.items()) or "none"
    typer.echo(
        f"{summary.frames} frames -> {summary.positive} positive, {summary.negative} negative "
        f"patches (dropped: {dropped}); manifest: {out / 'manifest.csv'}"
    )
    kinds = {k: n for k, n in summary.positions.items() if k.startswith("frame-") or k == "mined"}
    if kinds:
        typer.echo("of the negatives: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    if summary.unparsed and pattern is None:
        typer.echo(f"{summary.unparsed} frame id(s) are not ADSD names; patient/sequence/frame "
                   "left empty")  # fmt: skip


def _mine(frames, annotations, out, fmt, cfg, names, overwrite, checkpoint, per_frame, sizes,
          stride, dense, device) -> dict:  # fmt: skip
    """The model's false candidates per frame id, after the output is known to be good."""
    from lqer.data.annotated import annotated_frames, check_format
    from lqer.data.patch_output import check_output
    from lqer.eval.mining import mine
    from lqer.eval.scan import ScanConfig

    check_format(fmt)
    scan_cfg = ScanConfig(tuple(lists.numbers(sizes, "--mine-sizes")), stride, dense=dense)
    sources = {"the frames folder": frames, "--annotations": annotations, "--mine": checkpoint}
    check_output(Path(out), sources, overwrite)  # before the slow scan
    found = ((ref.id, image, boxes) for ref, image, boxes
             in annotated_frames(frames, annotations, fmt, cfg.labels, names))  # fmt: skip
    typer.echo(f"mining: scanning the frames with {checkpoint}", err=True)
    mined = mine(checkpoint, found, per_frame, scan_cfg, device, progress=True)
    typer.echo(f"mining: {sum(map(len, mined.values()))} false candidate(s) in {len(mined)} "
               "frame(s)", err=True)  # fmt: skip
    return mined


def _class_names(path: Path) -> list[str]:
    """YOLO's classes.txt: one name per line, so a name may hold spaces."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise LqerError(f"--classes: cannot read {path} ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise LqerError(f"--classes: {path} is not UTF-8 text") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _folds(k: int | None) -> int | None:
    """Checked as the option is read: one output file is planned per fold."""
    from lqer.data.splits import check_folds

    if k is not None:
        check_folds(k)
    return k


@app.command("split")
def split(
    out: Annotated[Path, typer.Option(help="Split CSV (path,label,split); _fold<i> per fold.")],
    strategy: Annotated[str, typer.Option(help="published, random, group or paper.")] = "random",
    root: Annotated[Path | None, typer.Option(help="A <split>/{positive,negative} tree.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="manifest.csv from make-patches.")] = None,
    by: Annotated[str, typer.Option(help="Group column: patient, sequence, ...")] = "patient",
    fractions: Annotated[str, typer.Option(help="Shares, e.g. train=0.7,val=0.1,test=0.2.")] = (
        "train=0.8,test=0.2"
    ),
    folds: Annotated[
        int | None,
        typer.Option(help="k train/test folds instead of one split.", callback=_folds),
    ] = None,
    rename: Annotated[
        str | None, typer.Option(help="Published split names to change, e.g. val=test.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random split.")] = 0,
):
    """Write a reproducible split file for `data.split_file`."""
    from lqer.data import splits
    from lqer.data.layout import fold_file, write_split
    from lqer.io import check_output_file

    planned = [out] if folds is None else [fold_file(out, k) for k in range(folds)]
    for path in planned:  # before any work: no output may replace an input or a foreign file
        check_output_file(path, "--out", [p for p in (manifest,) if p])
    results = splits.make_splits(
        strategy, root, manifest, by, splits.parse_fractions(fractions), folds, seed,
        lists.pairs(rename, "--rename"),
    )  # fmt: skip
    for k, (paths, labels, names) in enumerate(results):
        path = out if len(results) == 1 else fold_file(out, k)
        write_split(path, paths, labels, names)
        typer.echo(f"{path}:\n{splits.describe(labels, names)}")


@app.command("audit")
def audit(
    train: Annotated[
        list[Path] | None,
        typer.Option(metavar="DIR", help="Training split folder(s) (repeatable)."),
    ] = None,
    test: Annotated[
        list[Path] | None, typer.Option(metavar="DIR", help="Test split folder(s).")
    ] = None,
    val: Annotated[
        list[Path] | None, typer.Option(metavar="DIR", help="Validation split folder(s).")
    ] = None,
    split_file: Annotated[Path | None, typer.Option(help="A split CSV instead of folders.")] = None,
    method: Annotated[str, typer.Option(help="pixel, phash or both.")] = "pixel",
    max_distance: Annotated[float, typer.Option(help="pixel threshold (RMS, z-scored).")] = 0.35,
    max_hamming: Annotated[int, typer.Option(help="phash threshold (bits of 64).")] = 6,
    auto_threshold: Annotated[
        bool,
        typer.Option(
            "--auto-threshold", help="Thresholds at the --null-rate quantile of the rotation null."
        ),
    ] = False,
    null_rate: Annotated[float, typer.Option(help="False-positive rate for auto thresholds.")] = (
        0.01
    ),
    size: Annotated[int, typer.Option(help="Compare images at size x size.")] = 64,
    pairs: Annotated[Path | None, typer.Option(help="PNG of the closest pairs.")] = None,
    regroup: Annotated[
        Path | None, typer.Option(help="Write a split CSV with near-duplicate clusters kept whole.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --regroup.")] = 0,
    frames: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="DIR", help="Whole-frame folder(s) to audit instead, each with --annotations."
        ),
    ] = None,
    annotations: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="The annotations of each --frames folder."),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="Of --annotations.")] = "coco",
    label: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME", help="Box label meaning stenosis (repeatable); default all."),
    ] = None,
    duplicates: Annotated[
        Path | None, typer.Option(help="CSV of the pixel-identical frames (with --frames).")
    ] = None,
):
    """Find near-duplicates across splits and report how much of the test set leaks; with
    --frames, audit annotated whole frames (identical frames, frames without a box, missing
    images)."""
    if frames or annotations or duplicates:
        if train or val or test or split_file or pairs or regroup:
            raise LqerError("--frames audits whole frames; give it without --train/--val/--test,"
                            " --split-file, --pairs or --regroup")  # fmt: skip
        _audit_frames(frames or [], annotations or [], format, label, duplicates)
        return

    from lqer.data.audit import AuditConfig
    from lqer.data.split_audit import audit_splits

    cfg = AuditConfig(
        size=size, method=method, max_distance=max_distance, max_hamming=max_hamming,
        auto_threshold=auto_threshold, null_rate=null_rate,
    )  # fmt: skip
    folders = {"train": train, "val": val, "test": test}
    _, report = audit_splits(folders, split_file, cfg, pairs, regroup, seed)
    typer.echo(report)


def _audit_frames(frames, annotations, fmt, label, duplicates) -> None:
    from lqer.data import frame_audit

    if not frames or len(frames) != len(annotations):
        raise LqerError(f"give one --annotations per --frames folder ({len(frames)} --frames, "
                        f"{len(annotations)} --annotations)")  # fmt: skip
    sets = list(zip(frames, annotations, strict=True))
    labels = tuple(label) if label else None
    audit = frame_audit.audit_frames(sets, fmt, labels, progress=True, duplicates=duplicates)
    typer.echo(frame_audit.report(audit))
    typer.echo(f"audit time: {audit.seconds:.1f} s")
    if duplicates is not None:
        typer.echo(f"identical frames: {duplicates}")


@app.command("augment")
def augment(
    split_dir: Annotated[
        Path, typer.Argument(metavar="SPLIT_DIR", help="A training split folder with positive/.")
    ],
    count: Annotated[int, typer.Option(help="Copies per positive image.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the augmentations.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing _aug_NN files.")
    ] = False,
):
    """Offline A-DSSS augmentation of training positives, written beside them as _aug_NN."""
    from lqer.data.augment import augment_positives

    written = augment_positives(split_dir, count, seed, overwrite)
    typer.echo(f"wrote {written} augmented positives to {split_dir / 'positive'}")
