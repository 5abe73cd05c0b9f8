"""The error-aware criterion against brute force: refit by torch.linalg.lstsq for every unit."""

from __future__ import annotations

import torch

from llmprune.prune.obs import augment, block_errors, damped_inverse, refit, remove_


def _problem(seed=0, n=200, f=12, out=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64) + torch.randn(f, generator=g, dtype=torch.float64)
    w = torch.randn(out, f, generator=g, dtype=torch.float64)
    b = torch.randn(out, generator=g, dtype=torch.float64)
    return x, w, b


def _brute(x, w, b, removed, target=None):
    """The increase of ||Y - [X_K 1] W'^T||^2 over ||Y - [X 1] [W b]^T||^2 = 0 at its least-squares optimum."""
    y = x @ w.T + b if target is None else target
    keep = [j for j in range(x.shape[1]) if j not in set(removed)]
    xk = torch.cat([x[:, keep], torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    sol = torch.linalg.lstsq(xk, y).solution
    return (y - xk @ sol).pow(2).sum(), keep, sol


def test_every_single_unit_and_block_matches_brute_force():
    x, w, b = _problem()
    gram = augment(x.T @ x, x.sum(0), x.shape[0])
    wt = torch.cat([w, b[:, None]], dim=1)
    cinv = damped_inverse(gram, 0.0)
    singles = block_errors(wt, cinv, [[j] for j in range(12)])
    for j in range(12):
        torch.testing.assert_close(singles[j], _brute(x, w, b, [j])[0], rtol=1e-8, atol=1e-8)
    heads = [[0, 1, 2], [3, 4, 5], [9, 10, 11]]
    for block, de in zip(heads, block_errors(wt, cinv, heads), strict=True):
        torch.testing.assert_close(de, _brute(x, w, b, block)[0], rtol=1e-8, atol=1e-8)


def test_greedy_updates_and_refit_with_bias_are_the_least_squares_optimum():
    x, w, b = _problem(1)
    gram = augment(x.T @ x, x.sum(0), x.shape[0])
    wt = torch.cat([w, b[:, None]], dim=1)
    cinv, wcur = damped_inverse(gram, 0.0), wt.clone()
    remove_(cinv, wcur, [2, 7])
    err, keep, sol = _brute(x, w, b, [2, 7])
    torch.testing.assert_close(wcur[:, keep + [12]], sol.T)  # the OBS update is the refit
    after = block_errors(wcur, cinv, [[5]])[0]  # the next unit's increase, given the first two are gone
    torch.testing.assert_close(err + after, _brute(x, w, b, [2, 7, 5])[0], rtol=1e-8, atol=1e-8)
    mask = torch.ones(13, dtype=torch.bool)
    mask[[2, 7, 5]] = False
    torch.testing.assert_close(refit(gram, wt, mask, 0.0)[:, mask], _brute(x, w, b, [2, 5, 7])[2].T)


def test_refit_towards_other_targets():
    x, w, b = _problem(2)
    target = x @ torch.randn(5, 12, dtype=torch.float64).T + 3.0  # e.g. the dense model's outputs
    xa = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    gram = xa.T @ xa
    mask = torch.ones(13, dtype=torch.bool)
    mask[[0, 4]] = False
    got = refit(gram, torch.cat([w, b[:, None]], 1), mask, 0.0, cross=xa.T @ target)
    torch.testing.assert_close(got[:, mask], _brute(x, w, b, [0, 4], target)[2].T)
    assert got[:, ~mask].abs().max() == 0


def test_with_a_ridge_the_obs_updates_and_the_refit_agree():
    """Both shrink towards the current weights: removing columns by `remove_` on the damped inverse gives the
    weights `refit` computes with the same ridge."""
    from llmprune.prune.obs import ridge

    x, w, b = _problem(3)
    gram = augment(x.T @ x, x.sum(0), x.shape[0])
    wt = torch.cat([w, b[:, None]], dim=1)
    lam = ridge(gram, 0.05)
    cinv, wcur = damped_inverse(gram, lam), wt.clone()
    remove_(cinv, wcur, [1, 6, 8])
    mask = torch.ones(13, dtype=torch.bool)
    mask[[1, 6, 8]] = False
    torch.testing.assert_close(wcur, refit(gram, wt, mask, lam))
