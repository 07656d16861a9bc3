"""`lqer report`: one self-contained HTML page and a Markdown twin for a run or a comparison.

The report is built as a list of blocks (heading, paragraph, table, preformatted text,
figure) and rendered twice, so the two versions cannot disagree. Every number comes from the
run's or the comparison's files; the paragraph on the circuit is derived from the ablations.
"""

from __future__ import annotations

import base64
import html
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from lqer.errors import LqerError
from lqer.eval import figures, metrics
from lqer.experiments import compare
from lqer.experiments.comparison_files import read_comparison
from lqer.experiments.tables import markdown_table
from lqer.io import check_own_folder, owned_folder, write_text
from lqer.models import MODELS

KIND = "report"  # TARGET/report is marked as lqer report's
# Published figures, shown as reference rows: reported by others, not reproduced here.
PAPER_ROWS = [  # the LQER paper; single numbers, no intervals or seeds
    ("LQER", 0.950, 0.987),
    ("ResNet18", 0.910, 0.920),
    ("classical CNN", 0.880, 0.870),
    ("pure quantum CNN", 0.669, 0.710),
]
LRSE_ROWS = [  # Ovalle-Magallanes et al., Electronics 11(21):3570, 2022, official test splits
    ("P-ADSD", 0.9543, 0.8792, 0.8944, 0.8944, 0.9733),
    ("A-DSSS", 0.9549, 0.6320, 0.5991, 0.6103, 0.9620),
]
# What comparing each model or test-time variant with lqer tests, for the verdict.
ABLATIONS = {name: entry.tests for name, entry in MODELS.items() if entry.tests} | {
    compare.variant_name(compare.REFERENCE, a): tests for a, tests in compare.Q_ABLATIONS.items()
}
SOFTWARE = (
    "lqer",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "pennylane",
)


@dataclass
class Report:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str):
        self.blocks.append(("h2", text))

    def text(self, text: str):
        self.blocks.append(("p", text))

    def pre(self, text: str):
        self.blocks.append(("pre", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, rows))

    def figure(self, png: Path, caption: str):
        self.blocks.append(("figure", png, caption))


# ----------------------------------------------------------------------------- rendering


def to_markdown(report: Report, root: Path) -> str:
    lines = [f"# {report.title}", ""]
    for kind, *args in report.blocks:
        if kind == "h2":
            lines += [f"## {args[0]}", ""]
        elif kind == "p":
            lines += [args[0], ""]
        elif kind == "pre":
            lines += ["```", args[0].rstrip(), "```", ""]
        elif kind == "table":
            lines += [*markdown_table(*args), ""]
        elif kind == "figure":
            png, caption = args
            lines += [f"![{caption}]({png.relative_to(root).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}
td,th{border:1px solid #999;padding:0.25em 0.5em;text-align:left}
th{background:#eee} img{max-width:100%} pre{background:#f5f5f5;padding:1em;overflow:auto}
figcaption{font-style:italic;margin-bottom:2em}"""


def to_html(report: Report) -> str:
    title = html.escape(report.title)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
    ]
    for kind, *args in report.blocks:
        if kind == "h2":
            parts.append(f"<h2>{html.escape(args[0])}</h2>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(args[0])}</p>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(args[0])}</pre>")
        elif kind == "table":
            header, rows = args
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "figure":
            png, caption = args
            data = base64.b64encode(png.read_bytes()).decode()
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- sections


def software_rows() -> list[list[str]]:
    rows = [["python", sys.version.split()[0]], ["platform", platform.platform()]]
    for name in SOFTWARE:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows


def data_rows(data: dict) -> list[list]:
    return [
        [seed, split, s["n"], s["positives"], f"{s['prevalence']:.3f}", s["sha256"][:16]]
        for seed, info in data.items()
        for split, s in info["splits"].items()
    ]


def add_reference_rows(report: Report) -> None:
    report.heading("Reference rows: published figures, not ours")
    report.text(
        "Reported by others on their own splits and recipes; they were not reproduced here and "
        "carry no intervals. The official test splits of P-ADSD and A-DSSS are not in this "
        "repository's data, so our test split differs from LRSE-Net's."
    )
    report.table(
        ["source (reference)", "model", "accuracy", "AUC"],
        [["LQER paper", m, f"{a:.3f}", f"{u:.3f}"] for m, a, u in PAPER_ROWS],
    )
    report.table(
        [
            "source (reference)",
            "test split",
            "accuracy",
            "sensitivity",
            "precision",
            "F1",
            "specificity",
        ],
        [["LRSE-Net (Electronics 2022)", *row] for row in LRSE_ROWS],
    )


AUC_MARGIN = 0.01  # smallest AUC change worth calling a difference
TEST_TIME = tuple(compare.variant_name(compare.REFERENCE, a) for a in compare.Q_ABLATIONS)


def circuit_verdict(contrasts: list[dict], margin: float = AUC_MARGIN) -> str:
    """A plain statement, derived from the ablations' AUC differences and their intervals.

    A difference counts when its 95% interval excludes zero and it is at least `margin` AUC:
    with thousands of test images, a change of 0.0001 can be significant and still mean nothing.
    """
    found = [c for c in contrasts if c["model"] in ABLATIONS]
    if not found:
        models = [name for name in ABLATIONS if name in MODELS]
        return (
            "No ablation of the circuit was run, so this report cannot say whether the circuit "
            f"makes a difference. Run `lqer compare` with {', '.join(models[:-1])} or {models[-1]}."
        )
    sentences, better = [], []
    for c in found:
        if c["low"] > 0 and c["auc_difference"] >= margin:
            outcome, lqer_better = "LQER measurably better", True
        elif c["high"] < 0 and c["auc_difference"] <= -margin:
            outcome, lqer_better = "the ablation measurably better", False
        else:
            outcome, lqer_better = "no measurable difference", False
        better.append(lqer_better)
        sentences.append(
            f"{ABLATIONS[c['model']].capitalize()} changed test AUC by {-c['auc_difference']:+.3f} "
            f"(95% interval {-c['high']:+.3f} to {-c['low']:+.3f}; DeLong p < 0.05 in "
            f"{c['seeds_p_below_0.05']} of {c['n_seeds']} seeds): {outcome}."
        )
    if not any(better):
        lead = "On this data the circuit made no measurable difference to test AUC."
    elif all(better):
        lead = "On this data the circuit made a measurable difference: every ablation lost AUC."
    else:
        lead = "The evidence is mixed: only some ablations of the circuit measurably lost AUC."
    test_time = [c for c in found if c["model"] in TEST_TIME]
    if test_time and all(max(abs(c["low"]), abs(c["high"])) < margin for c in test_time):
        lead += (
            f" The trained classifier does not use q: zeroing or shuffling it at test time moved "
            f"AUC by less than {margin}, so any gap to the other models comes from how they "
            "trained, not from what the circuit computes."
        )
    return " ".join([lead, *sentences])


def run_figures(
    report: Report,
    run: Path,
    pred: compare.Predictions,
    threshold: float,
    fig_dir: Path,
    label: str,
) -> None:
    history = figures.read_history(run / "history.csv")
    stem = fig_dir / f"{pred.name}-seed{pred.seed}".replace(" ", "_")
    figures.training_dynamics(history, f"{stem}-fig2")
    report.figure(Path(f"{stem}-fig2.png"), f"Fig. 2: training dynamics, {label} (validation).")
    figures.learning_curves(history, f"{stem}-fig3")
    report.figure(Path(f"{stem}-fig3.png"), f"Fig. 3: learning curves, {label}.")
    figures.test_summary(pred.test_labels, pred.test_probs, threshold, f"{stem}-fig4", label)
    report.figure(
        Path(f"{stem}-fig4.png"),
        f"Fig. 4: test confusion matrix and test metrics, {label}, threshold {threshold:.3g} "
        "chosen on validation.",
    )


def metric_tables(report: Report, summary: list[dict]) -> None:
    for rule in dict.fromkeys(r["rule"] for r in summary):
        report.text(
            f"Test split; decision threshold {rule}. Cells: mean ± sd over seeds "
            "[95% bootstrap interval of the seed mean]."
        )
        report.table(*compare.summary_table(summary, rule))


def comparison_report(folder: Path, fig_dir: Path) -> Report:
    files = read_comparison(folder)  # checked whole before a figure is drawn
    manifest, summary, contrasts = files.manifest, files.summary, files.contrasts
    chosen = manifest["rules"][0]
    held = manifest.get("tables", manifest)  # what the tables hold; older files: what was asked
    report = Report(f"LQER comparison: {folder.name}")

    report.heading("Does the circuit make a difference?")
    report.text(circuit_verdict(contrasts))
    report.heading("Configuration")
    report.text(
        "The base configuration below is shared by every run; each run sets its own model.name, "
        "train.seed and out_dir. The tables hold every finished run of the folder. "
        f"Models: {', '.join(held['models'])}. "
        f"Seeds: {', '.join(map(str, held['seeds']))}. "
        f"Test split: {manifest['test_split']}. Threshold {chosen}, and fixed at 0.5. "
        f"{manifest['n_boot']} stratified bootstrap resamples of the test split."
    )
    report.pre((folder / "config.yaml").read_text())
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
            f"Paired DeLong test of {compare.REFERENCE} against each model on the test split; "
            "the interval is the bootstrap interval of the seed-mean AUC difference."
        )
        report.table(*compare.contrast_table(contrasts))
    add_reference_rows(report)

    report.heading("Figures")
    bars = {}
    for r in summary:
        if r["rule"] == chosen and r["metric"] in ("auc", "accuracy"):
            interval = metrics.Interval(r["mean"], r["low"], r["high"])
            bars.setdefault(r["model"], {})[r["metric"]] = interval
    if bars:
        figures.model_bars(bars, fig_dir / "fig1_models")
        report.figure(
            fig_dir / "fig1_models.png",
            f"Fig. 1: test accuracy (threshold {chosen}) and AUC, mean over seeds with "
            "95% bootstrap intervals; dashed line at 0.90.",
        )
    ok = [r for r in manifest["runs"] if r.get("in_tables", r["status"] != "failed")]
    if ok:
        seed = ok[0]["seed"]
        preds = {}
        for r in ok:
            if r["seed"] == seed:
                for p in compare.load_run(folder / r["run"], r["model"], seed):
                    preds[p.name] = p
        if not preds:
            raise LqerError(f"{folder}: the runs of seed {seed} have no predictions files")
        pairs = {name: (p.test_labels, p.test_probs) for name, p in preds.items()}
        figures.roc_curves(pairs, fig_dir / "roc", title=f"ROC, test split, seed {seed}")
        report.figure(fig_dir / "roc.png", f"ROC curves with 95% bootstrap bands, seed {seed}.")
        figures.reliability(pairs, fig_dir / "reliability", title=f"Reliability, seed {seed}")
        report.figure(fig_dir / "reliability.png", f"Reliability diagram, test split, seed {seed}.")
        first = next(iter(preds.values()))
        thresholds = [
            r["threshold"]
            for r in files.results
            if r["model"] == first.name and r["seed"] == seed and r["rule"] == chosen
        ]
        if not thresholds:
            raise LqerError(f"{folder / 'results.csv'}: no threshold of {first.name}, seed {seed}")
        run = folder / next(r["run"] for r in ok if r["seed"] == seed)
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
    if not (run / "best.pt").exists() and compare.missing_artifacts(run, cfg.model.name):
        raise LqerError(f"{run} has no best.pt: the run has not finished an epoch")
    seed = cfg.train.seed
    data = load_experiment(cfg.data, seed)
    if "test" not in data:
        raise LqerError(f"{run}: its configuration has no test split to report on")
    pred = compare.run_predictions(run, cfg.model.name, seed, data, "auto")[0]
    rows, _ = compare.evaluate([pred], target_sensitivity, n_boot=2000)
    chosen = compare.rules(target_sensitivity)[0]
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
    for rule in compare.rules(target_sensitivity):
        mine = [r for r in rows if r["rule"] == rule]
        cells = [compare.fmt_cell(r["value"], np.nan, r["low"], r["high"]) for r in mine]
        table.append([f"{rule} (t = {mine[0]['threshold']:.3g})", *cells])
    report.table(["threshold", *(m.upper() for m in compare.METRICS)], table)
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
        fig_dir.mkdir(exist_ok=True)
        build = comparison_report if is_comparison else run_report
        report = build(target, fig_dir)
        write_text(out / "report.md", to_markdown(report, out))
        write_text(out / "report.html", to_html(report))
    return out / "report.html", out / "report.md"
