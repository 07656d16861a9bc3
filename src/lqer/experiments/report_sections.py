"""The parts of a report that are not a comparison's own numbers: published reference rows,
the software used, the data, the verdict on the circuit, the figures and metric tables."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from lqer.eval import figures
from lqer.experiments import tables, variants
from lqer.experiments.report_document import Report
from lqer.models import MODELS

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
    variants.variant_name(variants.REFERENCE, a): tests for a, tests in variants.Q_ABLATIONS.items()
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

TEST_TIME = tuple(variants.variant_name(variants.REFERENCE, a) for a in variants.Q_ABLATIONS)


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


CHANCE_AUC = 0.6  # below it a model has barely learned: comparing it says nothing


def near_chance(summary: list[dict], limit: float = CHANCE_AUC) -> str:
    """A warning naming every trained model whose mean test AUC is near chance, or ''. Its
    test-time ablations are left out: an ablation that breaks a model shows the model uses q."""
    low = {r["model"]: float(r["mean"]) for r in summary if r["metric"] == "auc"
           and float(r["mean"]) < limit and not variants.is_ablation(r["model"])}  # fmt: skip
    if not low:
        return ""
    listed = ", ".join(f"{model} {auc:.2f}" for model, auc in low.items())
    return (f"Warning: test AUC near chance (0.5) for {listed}. A model that did not learn "
            "cannot show whether the circuit helps: train longer or on more data before "
            "reading the verdict below.")  # fmt: skip


def run_figures(
    report: Report,
    run: Path,
    pred: variants.Predictions,
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
        report.table(*tables.summary_table(summary, rule))
