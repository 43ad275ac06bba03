"""Convergence statistics (poppk.fit._convergence) against arviz-stats, the reference implementation of
Vehtari et al. (2021) that poppk used before, and against cases whose answer is known by hand.

References: arviz-stats ``array_stats.ess(method="bulk" | "tail", prob=(0.05, 0.95))`` and
``array_stats.rhat(method="rank")``; for independent draws the ESS is about the number of draws and
R-hat about 1; for an AR(1) chain with coefficient phi the ESS is about n (1 - phi) / (1 + phi).
"""

from __future__ import annotations

import numpy as np
import pytest
from arviz_stats.base import array_stats

from poppk.fit._convergence import ess_bulk, ess_tail, rhat_rank


def _ar1(rng, chains, draws, phi, shift=None):
    x = np.empty((chains, draws))
    x[:, 0] = rng.standard_normal(chains)
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(chains)
    if shift is not None:
        x += np.asarray(shift)[:, None]
    return x


CASES = [
    (4, 1000, 0.0, None), (4, 1000, 0.9, None), (2, 501, 0.5, None), (1, 400, 0.7, None),
    (4, 200, 0.3, [0.0, 0.0, 0.0, 2.0]),  # one chain elsewhere: R-hat well above 1
    (3, 64, 0.95, None), (4, 1000, -0.4, None),  # antithetic draws: ESS above the number of draws
]


@pytest.mark.parametrize("chains,draws,phi,shift", CASES)
def test_matches_arviz_stats(chains, draws, phi, shift):
    rng = np.random.default_rng(chains * 1000 + draws)
    for transform in (lambda v: v, np.exp, lambda v: np.round(v, 1)):  # skewed; heavily tied
        x = transform(_ar1(rng, chains, draws, phi, shift))
        ref_bulk = array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk")
        ref_tail = array_stats.ess(x, chain_axis=0, draw_axis=1, method="tail", prob=(0.05, 0.95))
        np.testing.assert_allclose(ess_bulk(x), ref_bulk, rtol=1e-10)
        np.testing.assert_allclose(ess_tail(x), ref_tail, rtol=1e-10)
        if chains > 1:
            ref_rhat = array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank")
            np.testing.assert_allclose(rhat_rank(x), ref_rhat, rtol=1e-10)


def test_known_values():
    rng = np.random.default_rng(1)
    iid = rng.standard_normal((4, 1000))
    assert 3400 < ess_bulk(iid) < 4600 and abs(rhat_rank(iid) - 1) < 0.01
    phi = 0.9  # ESS ~ 40000 * 0.1 / 1.9 = 2105
    assert 1700 < ess_bulk(_ar1(rng, 4, 10000, phi)) < 2500
    stuck = np.vstack([rng.standard_normal((3, 500)), 5 + rng.standard_normal((1, 500))])
    assert rhat_rank(stuck) > 1.5
    assert ess_bulk(np.ones((4, 100))) == 400  # a constant: every draw counts (arviz-stats' convention)
    assert np.isnan(rhat_rank(iid[:1])) and np.isnan(ess_bulk(iid[:, :3]))
