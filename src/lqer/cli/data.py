"""`lqer data ...`: build, split, audit and augment patch datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.errors import LqerError
from lqer.guarded_yaml import shown

app = typer.Typer(no_args_is_help=True)


def _names(text: str | None, option: str) -> dict[str, str]:
    """`a=b,c=d` -> {"a": "b", "c": "d"}."""
    pairs = {}
    for part in (text or "").split(","):
        if part.strip():
            old, sep, new = part.partition("=")
            if not sep:
                raise LqerError(f"{option}: expected old=new pairs, got {shown(text)}")
            pairs[old.strip()] = new.strip()
    return pairs


@app.command("make-patches")
def make_patches(
    frames: Annotated[Path, typer.Argument(help="Folder of frames: BMP/PNG/JPEG/TIFF/DICOM.")],
    annotations: Annotated[
        Path, typer.Option(help="Folder of VOC .xml or YOLO .txt files, or a COCO .json file.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for {positive,negative}/.")],
    format: Annotated[str, typer.Option("--format", help="voc, yolo or coco.")] = "voc",
    label: Annotated[
        list[str] | None, typer.Option(help="Box label meaning stenosis (repeatable); default all.")
    ] = None,
    classes: Annotated[
        Path | None, typer.Option(help="YOLO class names, one per line (classes.txt).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Patch side / longer box side.")] = 2.0,
    min_size: Annotated[int, typer.Option(help="Drop patches smaller than this (pixels).")] = 32,
    size: Annotated[int, typer.Option(help="Output side in pixels; 0 keeps native sizes.")] = 64,
    pattern: Annotated[
        str | None, typer.Option(help="Regex with named groups patient/sequence/frame for ids.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
):
    """Cut positive patches at stenosis boxes and negatives beside them, with a manifest."""
    from lqer.data import patches

    cfg = patches.PatchConfig(
        scale=scale, min_size=min_size, out_size=size, pattern=pattern or patches.ADSD_PATTERN,
        labels=tuple(label) if label else None,
    )  # fmt: skip
    names = _class_names(classes) if classes else None
    summary = patches.make_patches(
        frames, annotations, out, cfg, format, names, overwrite, progress=True
    )
    for warning in summary.warnings[:20]:
        typer.echo(f"warning: {warning}", err=True)
    if len(summary.warnings) > 20:
        typer.echo(f"... {len(summary.warnings)} warnings in all, see {out}/warnings.txt", err=True)
    dropped = ", ".join(f"{n} {why}" for why, n in summary.dropped.items()) or "none"
    typer.echo(
        f"{summary.frames} frames -> {summary.positive} positive, {summary.negative} negative "
        f"patches (dropped: {dropped}); manifest: {out / 'manifest.csv'}"
    )


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
    seed: Annotated[int, typer.Option()] = 0,
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
        _names(rename, "--rename"),
    )  # fmt: skip
    for k, (paths, labels, names) in enumerate(results):
        path = out if len(results) == 1 else fold_file(out, k)
        write_split(path, paths, labels, names)
        typer.echo(f"{path}:\n{splits.describe(labels, names)}")


@app.command("audit")
def audit(
    train: Annotated[
        list[Path] | None, typer.Option(help="Training split folder(s) (repeatable).")
    ] = None,
    test: Annotated[list[Path] | None, typer.Option(help="Test split folder(s).")] = None,
    val: Annotated[list[Path] | None, typer.Option(help="Validation split folder(s).")] = None,
    split_file: Annotated[Path | None, typer.Option(help="A split CSV instead of folders.")] = None,
    method: Annotated[str, typer.Option(help="pixel, phash or both.")] = "pixel",
    max_distance: Annotated[float, typer.Option(help="pixel threshold (RMS, z-scored).")] = 0.35,
    max_hamming: Annotated[int, typer.Option(help="phash threshold (bits of 64).")] = 6,
    auto_threshold: Annotated[
        bool, typer.Option(help="Thresholds at the --null-rate quantile of the rotation null.")
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
):
    """Find near-duplicates across splits and report how much of the test set leaks."""
    import time

    import numpy as np

    from lqer.data import audit as lib
    from lqer.data.layout import write_split
    from lqer.data.splits import describe
    from lqer.io import check_output_file

    start = time.perf_counter()
    given = {"train": train, "val": val, "test": test}
    folders = {name: dirs for name, dirs in given.items() if dirs}
    inputs = [d for dirs in folders.values() for d in dirs] + [split_file] * bool(split_file)
    for option, path in (("--pairs", pairs), ("--regroup", regroup)):
        if path is not None:
            check_output_file(path, option, inputs)
    if split_file is None and not folders:
        raise LqerError("give --train and --test folders, or --split-file")
    if split_file is not None and folders:  # one would be ignored without a word
        raise LqerError("give --split-file or --train/--val/--test folders, not both")
    cfg = lib.AuditConfig(
        size=size, method=method, max_distance=max_distance, max_hamming=max_hamming,
        auto_threshold=auto_threshold, null_rate=null_rate,
    )  # fmt: skip
    paths, labels, names = lib.gather(folders, split_file)
    result = lib.run_audit(paths, labels, names, cfg)
    typer.echo(lib.report(result, cfg))
    typer.echo(f"audit time: {time.perf_counter() - start:.1f} s for {len(paths)} images")
    query = "test" if "test" in result.names else result.names[1]
    if pairs:
        lib.plot_pairs(result, pairs, query)
        typer.echo(f"closest pairs: {pairs}")
    if regroup:
        new, clusters = lib.regroup(result, seed)
        sizes = np.bincount(clusters)
        typer.echo(
            f"{len(sizes)} clusters of near-duplicates, {int((sizes > 1).sum())} with more than "
            f"one image, largest {sizes.max()}"
        )
        write_split(regroup, [Path(p) for p in result.paths], result.labels, new)
        typer.echo(f"{regroup}:\n{describe(result.labels, new)}")


@app.command("augment")
def augment(
    split_dir: Annotated[Path, typer.Argument(help="A training split folder with positive/.")],
    count: Annotated[int, typer.Option(help="Copies per positive image.")] = 4,
    seed: Annotated[int, typer.Option()] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing _aug_NN files.")] = False,
):
    """Offline A-DSSS augmentation of training positives, written beside them as _aug_NN."""
    from lqer.data.augment import augment_positives

    written = augment_positives(split_dir, count, seed, overwrite)
    typer.echo(f"wrote {written} augmented positives to {split_dir / 'positive'}")
