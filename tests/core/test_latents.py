"""Latent maths without a model: seeds, truncation, style mixing, directions, interpolation, GANSpace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aigc_studio.core import latents as L

RES_64 = [4, 4, 8, 8, 16, 16, 32, 32, 64, 64]  # a 64x64 StyleGAN-style synthesis: 10 style layers


def test_seed_is_an_identity() -> None:
    a = L.z_from_seed(42, 64)
    assert a.dtype == np.float32 and a.shape == (64,)
    assert np.array_equal(a, L.z_from_seed(42, 64))
    assert not np.array_equal(a, L.z_from_seed(43, 64))
    # The frozen legacy stream: the same as StyleGAN's RandomState(seed).randn(z_dim).
    assert np.array_equal(a, np.random.RandomState(42).randn(64).astype(np.float32))
    zs = L.z_from_seeds([42, 7], 64)
    assert zs.shape == (2, 64) and np.array_equal(zs[0], a)
    assert L.z_from_seeds([], 8).shape == (0, 8)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", None, True])
def test_bad_seeds(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        L.z_from_seed(seed, 8)  # type: ignore[arg-type]


def test_seed_bounds_are_the_ones_the_message_states() -> None:
    assert L.SEED_MAX == 2**32 - 1
    assert L.check_seed(0) == 0 and L.check_seed(L.SEED_MAX) == L.SEED_MAX
    assert L.check_seed(np.uint32(L.SEED_MAX)) == L.SEED_MAX
    assert L.z_from_seed(L.SEED_MAX, 4).shape == (4,)
    for bad in (L.SEED_MAX + 1, -1, 2**63 - 1):
        with pytest.raises(ValueError, match=f"seed {bad} is out of range: seeds are whole numbers from 0 to "
                                             f"{L.SEED_MAX} \\(2\\*\\*32 - 1\\), both included"):
            L.check_seed(bad)
    with pytest.raises(ValueError, match="mix seed -1 is out of range"):
        L.check_seed(-1, "mix seed")


def test_seed_range() -> None:
    assert L.seed_range(5, 3) == [5, 6, 7]
    assert L.seed_range(L.SEED_MAX - 3, 4) == list(range(L.SEED_MAX - 3, L.SEED_MAX + 1))
    with pytest.raises(ValueError, match=f"seed {L.SEED_MAX - 2} is too large for 4 consecutive seeds: the last "
                                         f"would be {L.SEED_MAX + 1}.*at most {L.SEED_MAX - 3}"):
        L.seed_range(L.SEED_MAX - 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        L.seed_range(-1, 1)


def test_frames_are_bounded() -> None:
    assert len(L.interpolation_weights(L.MAX_FRAMES)) == L.MAX_FRAMES
    assert len(L.interpolation_weights(2)) == 2
    for bad in (1, L.MAX_FRAMES + 1, 100_000):
        with pytest.raises(ValueError, match=f"2 to {L.MAX_FRAMES} frames, not {bad}"):
            L.interpolation_weights(bad)
    with pytest.raises(ValueError, match="whole number"):
        L.check_frames(2.5)


def test_truncation_identity_average_and_cutoff() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 10, 16)).astype(np.float32)
    avg = rng.standard_normal(16).astype(np.float32)
    assert np.array_equal(L.truncate(w, avg, 1.0), w)
    assert np.array_equal(L.truncate(w, avg, 0.0), np.broadcast_to(avg, w.shape))
    half = L.truncate(w, avg, 0.5)
    np.testing.assert_allclose(half, avg + 0.5 * (w - avg), rtol=1e-6)
    cut = L.truncate(w, avg, 0.0, layers=[0, 1])
    assert np.array_equal(cut[:, :2], np.broadcast_to(avg, (3, 2, 16)))
    assert np.array_equal(cut[:, 2:], w[:, 2:])


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), 5.0, -3.0, "x"])
def test_truncation_bad_psi(psi: object) -> None:
    with pytest.raises(ValueError, match="ψ"):
        L.truncate(np.zeros(4), np.zeros(4), psi)  # type: ignore[arg-type]


def test_truncation_refuses_nan_w_and_width_mismatch() -> None:
    with pytest.raises(ValueError, match="NaN"):
        L.truncate(np.array([np.nan, 0.0]), np.zeros(2), 0.7)
    with pytest.raises(ValueError, match="width"):
        L.truncate(np.zeros(3), np.zeros(2), 0.7)


def test_layer_groups_by_resolution() -> None:
    g = L.layer_groups(RES_64)
    assert g == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": [8, 9]}
    small = L.layer_groups([4, 4, 8, 8, 16, 16])  # a 16x16 test model: levels split in thirds
    assert small == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}
    with pytest.raises(ValueError, match="range"):
        L.layer_groups([4, 4, 8])


@pytest.mark.parametrize("spec,want", [("coarse", [0, 1, 2, 3]), ("middle", [4, 5, 6, 7]), ("fine", [8, 9]),
                                       ("2:5", [2, 3, 4]), (":2", [0, 1]), ("8:", [8, 9]), ("3", [3]),
                                       (" Fine ", [8, 9])])
def test_mixing_layer_specs(spec: str, want: list[int]) -> None:
    assert L.mixing_layers(spec, 10, RES_64) == want


@pytest.mark.parametrize("spec", ["5:3", "0:11", "10", "all", "1-3", "-1:2"])
def test_bad_mixing_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="layers"):
        L.mixing_layers(spec, 10, RES_64)


def test_style_mix_replaces_exactly_the_chosen_layers() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 10, 8)).astype(np.float32)
    b = rng.standard_normal((2, 10, 8)).astype(np.float32)
    for spec in ("coarse", "middle", "fine", "3:7"):
        layers = L.mixing_layers(spec, 10, RES_64)
        m = L.style_mix(a, b, layers)
        for i in range(10):
            assert np.array_equal(m[:, i], b[:, i] if i in layers else a[:, i]), (spec, i)
    assert np.array_equal(L.style_mix(a, b, []), a)
    with pytest.raises(ValueError, match="do not exist"):
        L.style_mix(a, b, [10])
    with pytest.raises(ValueError, match="shape"):
        L.style_mix(a, b[:, :5], [0])


def test_broadcast_w() -> None:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    ws = L.broadcast_w(w, 4)
    assert ws.shape == (2, 4, 3) and np.array_equal(ws[:, 2], w)


def _anisotropic_ws(n: int = 2000, dim: int = 6) -> np.ndarray:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, dim)) * np.array([5.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (x @ q.T + 3.0).astype(np.float32), q


def test_principal_directions_recover_the_axes() -> None:
    ws, q = _anisotropic_ws()
    pd = L.principal_directions(ws, 3)
    assert pd.directions.shape == (3, 6) and pd.stds.shape == (3,)
    np.testing.assert_allclose(np.linalg.norm(pd.directions, axis=1), 1.0, atol=1e-5)
    for k in range(3):
        assert abs(float(pd.directions[k] @ q[:, k])) > 0.99
    assert pd.stds[0] > pd.stds[1] > pd.stds[2]
    assert abs(pd.stds[0] - 5.0) < 0.4 and pd.explained.sum() <= 1.0
    np.testing.assert_allclose(pd.mean, ws.mean(0), atol=1e-4)
    # Deterministic sign: largest component positive.
    assert all(d[np.abs(d).argmax()] > 0 for d in pd.directions)
    with pytest.raises(ValueError, match="two"):
        L.principal_directions(ws[:1], 2)


def test_apply_directions() -> None:
    ws, _ = _anisotropic_ws()
    pd = L.principal_directions(ws, 3)
    w = ws[0]
    assert np.array_equal(L.apply_directions(w, pd.directions, pd.stds, {}), w)
    moved = L.apply_directions(w, pd.directions, pd.stds, {0: 2.0})
    np.testing.assert_allclose(moved - w, 2.0 * pd.stds[0] * pd.directions[0], atol=1e-5)
    # Per-layer w with a layer range: only those layers move.
    wl = L.broadcast_w(w, 5)
    m = L.apply_directions(wl, pd.directions, pd.stds, {1: -1.0}, layers=[1, 2])
    assert np.array_equal(m[[0, 3, 4]], wl[[0, 3, 4]]) and not np.array_equal(m[1], wl[1])


@pytest.mark.parametrize("offsets,msg", [({3: 1.0}, "unknown direction 3"), ({-1: 1.0}, "unknown direction"),
                                         ({0: float("nan")}, "finite"), ({0: float("inf")}, "finite"),
                                         ({0: 1e6}, "too far"), ({0: "abc"}, "not a number"),
                                         ({"x": 1.0}, "whole number"), ({1.5: 1.0}, "whole number")])
def test_bad_direction_offsets(offsets: dict, msg: str) -> None:
    d = np.eye(3, 4, dtype=np.float32)
    with pytest.raises(ValueError, match=msg):
        L.apply_directions(np.zeros(4), d, np.ones(3), offsets)


def test_clamp_offset() -> None:
    assert L.clamp_offset(1e9) == L.DIRECTION_LIMIT and L.clamp_offset(-1e9) == -L.DIRECTION_LIMIT
    assert L.clamp_offset(1.5) == 1.5
    with pytest.raises(ValueError, match="NaN"):
        L.clamp_offset(float("nan"))


def test_interpolation_endpoints_equal_the_inputs() -> None:
    a, b = L.z_from_seed(1, 32), L.z_from_seed(2, 32)
    ts = L.interpolation_weights(5)
    assert ts[0] == 0.0 and ts[-1] == 1.0 and len(ts) == 5
    for f in (L.lerp, L.slerp):
        assert np.array_equal(f(a, b, ts[0]), a) and np.array_equal(f(a, b, ts[-1]), b)
    np.testing.assert_allclose(L.lerp(a, b, 0.5), (a + b) / 2, atol=1e-6)
    # slerp keeps the norm of equal-norm inputs (it moves on the sphere), lerp shrinks it.
    a2, b2 = a / np.linalg.norm(a), b / np.linalg.norm(b)
    mid = L.slerp(a2, b2, 0.5)
    assert math.isclose(float(np.linalg.norm(mid)), 1.0, rel_tol=1e-5)
    assert np.linalg.norm(L.lerp(a2, b2, 0.5)) < 0.9
    # Parallel inputs fall back to lerp; batched inputs work along the last axis.
    np.testing.assert_allclose(L.slerp(a, 2 * a, 0.5), 1.5 * a, rtol=1e-5)
    both = L.slerp(np.stack([a, b]), np.stack([b, a]), 0.25)
    np.testing.assert_allclose(both[0], L.slerp(a, b, 0.25), rtol=1e-5)
    with pytest.raises(ValueError, match="frames"):
        L.interpolation_weights(1)


def test_condition_features() -> None:
    a = L.condition_features("Red heart!")
    assert a.shape == (L.CONDITION_DIM,) and a.dtype == np.float32
    assert math.isclose(float(np.linalg.norm(a)), 1.0, rel_tol=1e-6)
    assert np.array_equal(a, L.condition_features("red   HEART"))
    assert not np.array_equal(a, L.condition_features("heart red"))  # word pairs keep some order
    assert float(a @ L.condition_features("cat face")) < 0.5
    assert not L.condition_features("").any() and not L.condition_features("   ").any()
    with pytest.raises(ValueError, match="no words"):
        L.condition_features("!!! ???")
    with pytest.raises(ValueError, match="characters"):
        L.condition_features("a" * (L.MAX_CONDITION_CHARS + 1))
