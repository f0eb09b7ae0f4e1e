"""Greedy ensemble selection: it never does worse than the best single candidate on the OOF rows,
it combines complementary models, and it ignores useless ones."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.final.selection import oof_rows, select_ensemble


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def noisy_expert(y: np.ndarray, good: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Confident and right on rows where ``good``; uniform-ish noise elsewhere."""
    n, k = len(y), int(y.max()) + 1
    proba = rng.dirichlet(np.ones(k), size=n)
    proba[good] = 0.05 / (k - 1)
    proba[good, y[good]] = 0.95
    return proba


def test_blend_of_complementary_experts_beats_each() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    half = np.arange(600) < 300
    a = noisy_expert(y, half, rng)  # right on the first half only
    b = noisy_expert(y, ~half, rng)  # right on the second half only
    junk = rng.dirichlet(np.ones(3), size=600)
    sel = select_ensemble([junk, a, b], y, accuracy)
    assert sel.best_single in (1, 2)
    assert set(sel.counts) == {1, 2}  # the useless candidate is never picked
    assert sel.score > sel.best_single_score + 0.2
    assert accuracy(y, sel.blend([junk, a, b])) == pytest.approx(sel.score)
    assert sum(sel.weights.values()) == pytest.approx(1.0)


def test_single_dominant_candidate_stays_alone() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    perfect = np.eye(2)[y] * 0.9 + 0.05
    weak = rng.dirichlet(np.ones(2), size=400)
    sel = select_ensemble([weak, perfect], y, accuracy)
    assert sel.counts == {1: 1}
    assert sel.score == 1.0
    assert sel.history == [1.0]


def test_never_worse_than_best_single_and_bounded_size() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    cands = [noisy_expert(y, rng.random(300) < p, rng) for p in (0.3, 0.4, 0.5, 0.6)]
    sel = select_ensemble(cands, y, accuracy, max_size=5)
    assert sel.score >= sel.best_single_score
    assert sel.size <= 5
    assert sel.history == sorted(sel.history)


def test_oof_rows_average_repeats_and_mask_missing_rows() -> None:
    oof = np.full((2, 3, 2), np.nan)
    oof[0, 0] = [0.2, 0.8]
    oof[1, 0] = [0.4, 0.6]
    oof[0, 1] = [1.0, 0.0]
    proba, mask = oof_rows(oof)
    assert mask.tolist() == [True, True, False]
    assert proba[0] == pytest.approx([0.3, 0.7])
    assert proba[1] == pytest.approx([1.0, 0.0])


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        select_ensemble([], np.array([0, 1]), accuracy)


def test_ties_in_the_metric_go_to_the_better_calibrated_candidate() -> None:
    """Two candidates with the same decisions (same accuracy): the blend starts from the one that
    puts more probability on the true class (lower log-loss), not from either at random."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    sure = np.eye(2)[y] * 0.8 + 0.1  # right everywhere, 0.9 on the true class
    unsure = np.eye(2)[y] * 0.2 + 0.4  # the same decisions at 0.6
    for cands, best in (([unsure, sure], 1), ([sure, unsure], 0)):
        sel = select_ensemble(cands, y, accuracy)
        assert sel.best_single == best and sel.counts == {best: 1}


def test_log_loss_climb_keeps_calibrated_members_and_still_reports_the_metric() -> None:
    """Climbing log-loss, a member that only shifts decisions (confidently wrong elsewhere) is
    left out, while the score reported stays the metric's, of the blend actually chosen."""
    from mmbench.final.selection import neg_log_loss

    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.2).astype(np.int64)
    score = np.clip(0.35 * y + rng.normal(0.3, 0.15, 2000), 0.01, 0.99)
    calibrated = np.stack([1 - score, score], axis=1)
    shifted = np.clip(score + 0.3, 0.01, 0.99)  # more minority calls, worse probabilities
    pushy = np.stack([1 - shifted, shifted], axis=1)
    by_metric = select_ensemble([calibrated, pushy], y, accuracy)
    by_loss = select_ensemble([calibrated, pushy], y, accuracy, objective=neg_log_loss)
    assert by_loss.counts == {0: 1}
    assert by_loss.score == pytest.approx(accuracy(y, calibrated))
    assert neg_log_loss(y, by_loss.blend([calibrated, pushy])) >= neg_log_loss(
        y, by_metric.blend([calibrated, pushy])
    )
    assert by_loss.best_single_score == max(accuracy(y, calibrated), accuracy(y, pushy))
