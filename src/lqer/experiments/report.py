"""`lqer report`: one self-contained HTML page and a Markdown twin for a run or a comparison.

The report is built as a list of blocks (heading, paragraph, table, preformatted text,
figure) and rendered twice, so the two versions cannot disagree. Every number comes from the
run's or the comparison's files; the paragraph on the circuit is derived from the ablations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lqer.errors import LqerError
from lqer.eval import figures, metrics
from lqer.experiments import compare, runs, statistics, tables, variants
from lqer.experiments.comparison_files import read_comparison
from lqer.experiments.report_document import Report, to_html, to_markdown
from lqer.experiments.report_sections import (
    add_reference_rows,
    circuit_verdict,
    data_rows,
    metric_tables,
    near_chance,
    run_figures,
    software_rows,
)
from lqer.io import check_own_folder, owned_folder, write_text
from lqer.logs import logger

KIND = "report"  # TARGET/report is marked as lqer report's


def comparison_report(folder: Path, fig_dir: Path) -> Report:
    files = read_comparison(folder)  # checked whole before a figure is drawn
    manifest, summary, contrasts = files.manifest, files.summary, files.contrasts
    chosen = manifest["rules"][0]
    held = manifest.get("tables", manifest)  # what the tables hold; older files: what was asked
    report = Report(f"LQER comparison: {folder.name}")

    report.heading("Does the circuit make a difference?")
    if warning := near_chance(summary):
        report.text(warning)
    report.text(circuit_verdict(contrasts))
    report.heading("Configuration")
    report.text(
        "The base configuration below is shared by every run; each run sets its own model.name, "
        "train.seed and run folder (out_dir, left out here). The tables hold every finished run "
        "of the folder. "
        f"Models: {', '.join(held['models'])}. "
        f"Seeds: {', '.join(map(str, held['seeds']))}. "
        f"Test split: {manifest['test_split']}. Threshold {chosen}, and fixed at 0.5. "
        f"{manifest['n_boot']} stratified bootstrap resamples of the test split."
    )
    shared = (folder / "config.yaml").read_text().splitlines()
    report.pre("\n".join(line for line in shared if not line.startswith("out_dir:")) + "\n")
    report.heading("Data")
    hashes = {info["splits"].get("test", {}).get("sha256") for info in manifest["data"].values()}
    same = (
        "The test split is the same for every seed."
        if len(hashes) == 1
        else "The test split differs between seeds (data.limit subsamples it per seed)."
    )
    report.text(f"Split sizes, prevalence of stenosis and content hashes per seed. {same}")
    report.table(
        ["seed", "split", "n", "positives", "prevalence", "sha256 (first 16)"],
        data_rows(manifest["data"]),
    )
    report.heading("Results")
    metric_tables(report, summary)
    if contrasts:
        report.text(
            f"Paired DeLong test of {variants.REFERENCE} against each model on the test split; "
            "the interval is the bootstrap interval of the seed-mean AUC difference."
        )
        report.table(*tables.contrast_table(contrasts))
    add_reference_rows(report)

    report.heading("Figures")
    bars = {}
    for r in summary:
        if r["rule"] == chosen and r["metric"] in ("auc", "accuracy"):
            interval = metrics.Interval(r["mean"], r["low"], r["high"])
            bars.setdefault(r["model"], {})[r["metric"]] = interval
    if bars:
        logger.info("report: Fig. 1, the models' accuracy and AUC")
        figures.model_bars(bars, fig_dir / "fig1_models")
        report.figure(
            fig_dir / "fig1_models.png",
            f"Fig. 1: test accuracy (threshold {chosen}) and AUC, mean over seeds with "
            "95% bootstrap intervals; the dashed line marks 0.90 for reference (the sensitivity "
            "that the threshold rule aims for).",
        )
    ok = [r for r in manifest["runs"] if r.get("in_tables", r["status"] != "failed")]
    if ok:
        seed = ok[0]["seed"]
        preds = {}
        for r in ok:
            if r["seed"] == seed:
                for p in variants.load_run(folder / r["run"], r["model"], seed):
                    preds[p.name] = p
        if not preds:
            raise LqerError(f"{folder}: the runs of seed {seed} have no predictions files")
        pairs = {name: (p.test_labels, p.test_probs) for name, p in preds.items()}
        logger.info(f"report: ROC curves and reliability of {len(pairs)} models, seed {seed}")
        figures.roc_curves(pairs, fig_dir / "roc", title=f"ROC, test split, seed {seed}")
        report.figure(fig_dir / "roc.png", f"ROC curves with 95% bootstrap bands, seed {seed}.")
        figures.reliability(pairs, fig_dir / "reliability", title=f"Reliability, seed {seed}")
        report.figure(fig_dir / "reliability.png", f"Reliability diagram, test split, seed {seed}.")
        first = preds.get(variants.REFERENCE) or next(iter(preds.values()))
        thresholds = [
            r["threshold"]
            for r in files.results
            if r["model"] == first.name and r["seed"] == seed and r["rule"] == chosen
        ]
        if not thresholds:
            raise LqerError(f"{folder / 'results.csv'}: no threshold of {first.name}, seed {seed}")
        run = folder / next(r["run"] for r in ok if r["seed"] == seed)
        logger.info(f"report: training figures of {first.name}, seed {seed}")
        run_figures(report, run, first, thresholds[0], fig_dir, f"{first.name}, seed {seed}")

    report.heading("Runs")
    report.table(
        ["model", "seed", "status", "asked in the last call", "folder", "error"],
        [
            [r["model"], r["seed"], r["status"], "yes" if r.get("asked", True) else "no",
             r["run"], r.get("error", r.get("reason", ""))]
            for r in manifest["runs"]
        ],
    )  # fmt: skip
    report.heading("Software and device")
    devices = manifest.get("devices") or [manifest["device"]]
    report.text(f"Comparison ran on {'; '.join(devices)}.")
    report.table(["package", "version"], software_rows())
    return report


def run_report(run: Path, fig_dir: Path, target_sensitivity: float = 0.90) -> Report:
    """A single training run: its own validation threshold, test metrics and figures."""
    from lqer.config import load_config
    from lqer.data.dataset import fingerprint, load_experiment

    cfg = load_config(run / "config.yaml")
    if not (run / "best.pt").exists() and runs.missing_artifacts(run, cfg.model.name):
        raise LqerError(f"{run} has no best.pt: the run has not finished an epoch")
    seed = cfg.train.seed
    data = load_experiment(cfg.data, seed)
    if "test" not in data:
        raise LqerError(f"{run}: its configuration has no test split to report on")
    pred = variants.run_predictions(run, cfg.model.name, seed, data, "auto")[0]
    rows, _ = statistics.evaluate([pred], target_sensitivity, n_boot=2000)
    chosen = statistics.rules(target_sensitivity)[0]
    threshold = next(r["threshold"] for r in rows if r["rule"] == chosen)

    report = Report(f"LQER run: {run.name}")
    report.heading("Does the circuit make a difference?")
    report.text(circuit_verdict([]))
    report.heading("Configuration")
    report.pre((run / "config.yaml").read_text())
    report.heading("Data")
    report.table(
        ["seed", "split", "n", "positives", "prevalence", "sha256 (first 16)"],
        data_rows({seed: fingerprint({k: (v.paths, v.labels.tolist()) for k, v in data.items()})}),
    )
    report.heading("Results")
    report.text(
        f"Test split ({cfg.data.split_file or cfg.data.test_split}); values with 95% "
        "stratified bootstrap intervals (2000 resamples)."
    )
    table = []
    for rule in statistics.rules(target_sensitivity):
        mine = [r for r in rows if r["rule"] == rule]
        cells = [tables.fmt_cell(r["value"], np.nan, r["low"], r["high"]) for r in mine]
        table.append([f"{rule} (t = {mine[0]['threshold']:.3g})", *cells])
    report.table(["threshold", *(m.upper() for m in variants.METRICS)], table)
    add_reference_rows(report)
    report.heading("Figures")
    run_figures(report, run, pred, threshold, fig_dir, f"{cfg.model.name}, seed {seed}")
    pairs = {pred.name: (pred.test_labels, pred.test_probs)}
    figures.roc_curves(pairs, fig_dir / "roc")
    report.figure(fig_dir / "roc.png", "ROC curve with its 95% bootstrap band, test split.")
    figures.reliability(pairs, fig_dir / "reliability")
    report.figure(fig_dir / "reliability.png", "Reliability diagram, test split.")
    report.heading("Software and device")
    report.text(
        f"Configured training device: {cfg.train.device}; report made on "
        f"{compare.device_description()}."
    )
    report.table(["package", "version"], software_rows())
    return report


def write_report(target: str | Path) -> tuple[Path, Path]:
    """Write report.html (self-contained) and report.md (+ figures/) into `target`/report."""
    target = Path(target)
    out = target / "report"
    fig_dir = out / "figures"
    is_comparison = (target / "comparison.json").exists()
    if not is_comparison and not (target / "history.csv").exists():
        raise LqerError(
            f"{target} is neither a run folder (no history.csv) nor a comparison folder "
            "(no comparison.json)"
        )
    check_own_folder(out, KIND, "TARGET/report")  # a folder named report that is not ours
    with owned_folder(out, KIND, "TARGET/report"):
        logger.info(f"report of {target} into {out}")
        fig_dir.mkdir(exist_ok=True)
        build = comparison_report if is_comparison else run_report
        report = build(target, fig_dir)
        write_text(out / "report.md", to_markdown(report, out))
        write_text(out / "report.html", to_html(report))
    return out / "report.html", out / "report.md"
