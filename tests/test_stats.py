"""lqer.eval.metrics against published values (pROC on its aSAH data), brute force, simulation."""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from lqer.eval import metrics as stats

ASAH = np.loadtxt(Path(__file__).parent / "data" / "asah.csv", delimiter=",", skiprows=1)
OUTCOME, WFNS, S100B, NDKA = ASAH.T


def test_asah_aucs_and_variances_match_proc():
    # pROC: auc(aSAH$outcome, aSAH$wfns) etc., var(roc, method = "delong") (pROC's test suite)
    aucs, cov = stats.delong_covariance(OUTCOME, np.stack([WFNS, S100B, NDKA]))
    assert aucs == pytest.approx([0.823678861788618, 0.731368563685637, 0.611957994579946])
    assert np.diag(cov) == pytest.approx(
        [0.00146991470882363, 0.00266868245717244, 0.0031908105493913], rel=1e-9
    )


@pytest.mark.parametrize(
    "a, b, z, p, low, high",
    [
        # roc.test(roc(aSAH$outcome, aSAH$wfns), roc(aSAH$outcome, aSAH$s100b)):
        # "Z = 2.209, p-value = 0.02718" in pROC's documentation; full digits from its tests
        (WFNS, S100B, 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
        (NDKA, S100B, -1.39077002573558, 0.164295175223054, -0.287691744634191, 0.048870606422809),
        (WFNS, NDKA, 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.360040563483357),
    ],
)
def test_paired_delong_matches_proc_roc_test(a, b, z, p, low, high):
    result = stats.delong_test(OUTCOME, a, b)
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p == pytest.approx(p, rel=1e-9)
    assert (result.diff_low, result.diff_high) == pytest.approx((low, high), rel=1e-9)
    swapped = stats.delong_test(OUTCOME, b, a)
    assert swapped.z == pytest.approx(-z, rel=1e-9) and swapped.p == pytest.approx(p)


def brute_force_delong(labels, a, b):
    """DeLong, DeLong & Clarke-Pearson (1988) structural components by explicit O(n^2) sums."""

    def components(s):
        pos, neg = s[labels == 1], s[labels == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(1), psi.mean(0)

    (v10a, v01a), (v10b, v01b) = components(a), components(b)
    s = np.cov([v10a, v10b]) / len(v10a) + np.cov([v01a, v01b]) / len(v01a)
    z = (v10a.mean() - v10b.mean()) / np.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return z, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_delong_equals_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(150) < 0.3).astype(int)
    a = np.round(labels + rng.normal(0, 1, 150), 1)  # rounding makes ties
    b = np.round(0.5 * a + labels * 0.3 + rng.normal(0, 1, 150), 1)
    z, p = brute_force_delong(labels, a, b)
    result = stats.delong_test(labels, a, b)
    assert result.z == pytest.approx(z, rel=1e-10)
    assert result.p == pytest.approx(p, rel=1e-10)


def test_identical_scores_give_no_difference():
    result = stats.delong_test(OUTCOME, S100B, S100B)
    assert result.z == 0 and result.p == 1


def test_vectorised_metrics_match_sklearn_row_by_row():
    rng = np.random.default_rng(0)
    labels = (rng.random((4, 80)) < 0.4).astype(int)
    probs = np.clip(0.3 * labels + rng.random((4, 80)) * 0.7, 0, 1)
    metrics = stats.all_metrics(0.5)
    for y, p in zip(labels, probs, strict=True):
        pred = p >= 0.5
        assert metrics["auc"](y, p) == pytest.approx(roc_auc_score(y, p))
        assert metrics["accuracy"](y, p) == pytest.approx(accuracy_score(y, pred))
        assert metrics["f1"](y, p) == pytest.approx(f1_score(y, pred))
        assert metrics["sensitivity"](y, p) == pytest.approx(recall_score(y, pred))
        assert metrics["specificity"](y, p) == pytest.approx(recall_score(y, pred, pos_label=0))
        assert metrics["ppv"](y, p) == pytest.approx(precision_score(y, pred))
        assert metrics["npv"](y, p) == pytest.approx(precision_score(y, pred, pos_label=0))
        assert metrics["brier"](y, p) == pytest.approx(brier_score_loss(y, p))
        assert stats.brier_score(y, p) == pytest.approx(brier_score_loss(y, p))
    batched = metrics["auc"](labels, probs)
    assert batched.shape == (4,)
    assert batched == pytest.approx(
        [roc_auc_score(y, p) for y, p in zip(labels, probs, strict=True)]
    )


def test_ppv_is_nan_when_nothing_is_called_positive():
    assert np.isnan(stats.all_metrics(0.99)["ppv"](np.array([0, 1]), np.array([0.1, 0.2])))


def test_ece_by_hand():
    # two bins used: [0.2, 0.2] with outcomes (0, 1) -> |0.5 - 0.2|; [0.9] with outcome 1 -> 0.1
    labels, probs = np.array([0, 1, 1]), np.array([0.2, 0.2, 0.9])
    assert stats.ece(labels, probs) == pytest.approx((2 * 0.3 + 1 * 0.1) / 3)
    assert stats.ece(np.array([0, 1]), np.array([0.0, 1.0])) == 0
    batched = stats.ece(np.stack([labels, labels]), np.stack([probs, probs]))
    assert batched.shape == (2,) and batched[1] == pytest.approx(batched[0])


def test_threshold_for_sensitivity_is_the_highest_that_reaches_it():
    labels = np.array([1] * 10 + [0] * 10)
    probs = np.r_[np.linspace(0.95, 0.05, 10), np.linspace(0.5, 0.0, 10)]
    t = stats.threshold_for_sensitivity(labels, probs, 0.9)
    assert t == pytest.approx(probs[8])  # the 9th highest positive
    sens = stats.all_metrics(t)["sensitivity"]
    assert sens(labels, probs) >= 0.9
    assert stats.all_metrics(t + 1e-9)["sensitivity"](labels, probs) < 0.9
    assert stats.threshold_for_sensitivity(labels, probs, 1.0) == pytest.approx(0.05)


def test_asah_s100b_decision_matches_proc_coords():
    # pROC coords(roc(aSAH$outcome, aSAH$s100b), 0.205): sensitivity 0.6341, specificity 0.8056
    metrics = stats.all_metrics(0.205)
    assert metrics["sensitivity"](OUTCOME, S100B) == pytest.approx(26 / 41)
    assert metrics["specificity"](OUTCOME, S100B) == pytest.approx(58 / 72)


def test_bootstrap_is_seeded_and_brackets_the_point_value():
    first = stats.bootstrap(stats.all_metrics(0.2), OUTCOME, S100B, n_boot=400, seed=1)
    again = stats.bootstrap(stats.all_metrics(0.2), OUTCOME, S100B, n_boot=400, seed=1)
    other = stats.bootstrap(stats.all_metrics(0.2), OUTCOME, S100B, n_boot=400, seed=2)
    assert first == again and first["auc"] != other["auc"]
    assert first["auc"].value == pytest.approx(0.731368563685637)
    for interval in first.values():
        assert interval.low <= interval.value <= interval.high


def test_bootstrap_auc_interval_covers_the_true_auc_about_95_percent():
    # Binormal scores: positives N(d, 1), negatives N(0, 1), true AUC = Phi(d / sqrt 2).
    d, n, reps = 1.0, 80, 200
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(n), np.zeros(n)]
    hits, widths = 0, []
    for rep in range(reps):
        scores = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
        ci = stats.bootstrap({"auc": stats.auc}, labels, scores, n_boot=500, seed=rep)["auc"]
        hits += ci.low <= true_auc <= ci.high
        widths.append(ci.high - ci.low)
    # Seeded, so deterministic; the band is > 4 binomial standard deviations wide around 0.95.
    assert 0.88 <= hits / reps <= 0.995
    assert 0.1 < np.mean(widths) < 0.25  # about 2 * 1.96 * DeLong SE at this n
