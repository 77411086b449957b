"""Domain FID/KID maths (core.metrics) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from aigc_studio.core.metrics import FeatureStats, feature_stats, frechet_distance, kernel_distance


def test_fid_of_identical_statistics_is_zero() -> None:
    f = np.random.default_rng(0).normal(size=(500, 6))
    s = feature_stats(f)
    assert frechet_distance(s, s) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_the_closed_form_for_diagonal_gaussians() -> None:
    # For diagonal covariances FID = |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    a = FeatureStats(mu1, np.diag(sd1 ** 2), 100)
    b = FeatureStats(mu2, np.diag(sd2 ** 2), 100)
    expected = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_fid_with_a_full_covariance_matches_a_rotated_diagonal() -> None:
    # FID is invariant to a rotation of the feature space applied to both sets.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a = FeatureStats(np.zeros(4), np.diag([1.0, 2.0, 3.0, 4.0]), 10)
    b = FeatureStats(np.ones(4), np.diag([4.0, 3.0, 2.0, 1.0]), 10)
    ra = FeatureStats(q @ a.mean, q @ a.cov @ q.T, 10)
    rb = FeatureStats(q @ b.mean, q @ b.cov @ q.T, 10)
    assert frechet_distance(ra, rb) == pytest.approx(frechet_distance(a, b), rel=1e-8)


def test_fid_grows_with_the_shift() -> None:
    rng = np.random.default_rng(2)
    ref = feature_stats(rng.normal(size=(1000, 5)))
    fids = [frechet_distance(feature_stats(rng.normal(size=(1000, 5)) + d), ref) for d in (0.0, 0.5, 1.0)]
    assert fids[0] < fids[1] < fids[2]


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, same_sd = kernel_distance(x, y, subsets=20, subset_size=200)
    diff, _ = kernel_distance(x + 1.0, y, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_sd + 1e-3
    assert diff > 10 * max(abs(same), same_sd)
    assert kernel_distance(x, y, subsets=5, seed=7) == kernel_distance(x, y, subsets=5, seed=7)


@pytest.mark.parametrize("bad, msg", [(np.full((3, 2), np.nan), "NaN"), (np.zeros((0, 2)), "non-empty"),
                                      (np.zeros(4), "non-empty")])
def test_bad_features(bad: np.ndarray, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        feature_stats(bad)
    with pytest.raises(ValueError, match=msg):
        kernel_distance(bad, np.zeros((4, 2)))


def test_feature_sizes_must_agree() -> None:
    a = feature_stats(np.random.default_rng(0).normal(size=(10, 3)))
    b = feature_stats(np.random.default_rng(0).normal(size=(10, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(a, b)
    with pytest.raises(ValueError, match="feature sizes differ"):
        kernel_distance(np.zeros((5, 3)), np.zeros((5, 4)))
