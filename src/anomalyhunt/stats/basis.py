"""Whitened coordinates of a background fit, shared by Migrad (:mod:`stats.fit`) and the batch
Newton fit of the toys (:mod:`stats.batch`), so both minimise the same likelihood in the same
well-conditioned parameters."""

from __future__ import annotations

import numpy as np

from anomalyhunt.stats.functions import EXP_MAX, Quadrature


class Basis:
    """Whitened coordinates of a fit with the first ``k`` parameters free: p = p_ref + R u.

    p = (theta[:k], [signal yield]); the other thetas stay at zero. R is the inverse of the R
    factor of the QR decomposition of d mu / d p / sqrt(mu) over the fitted bins at p_ref, so the
    Fisher information at the start is the identity. ln f at the quadrature nodes of every bin is
    ``g_ref + B @ u``.
    """

    def __init__(
        self,
        quad: Quadrature,
        rows: np.ndarray,
        theta_ref: np.ndarray,
        k: int,
        template: np.ndarray | None = None,
    ):
        self.k = k
        self.theta_ref = np.asarray(theta_ref, dtype=float).copy()
        self.theta_ref[k:] = 0.0
        mu0, jac0 = quad.mu_and_jac(self.theta_ref)
        mu0, jac0 = mu0[rows], jac0[rows, :k]
        if template is not None:
            jac0 = np.concatenate([jac0, template[rows, None]], axis=1)
        weight = np.maximum(mu0, 1e-3 * max(mu0.mean(), 1e-300))
        _, r = np.linalg.qr(jac0 / np.sqrt(weight)[:, None])
        diag = np.diag(r)
        r = r * np.sign(np.where(diag == 0, 1.0, diag))[:, None]  # deterministic signs
        self.rinv = np.linalg.solve(r, np.eye(r.shape[0]))
        self.weights = quad.weights
        self.g_ref = quad.phi @ self.theta_ref + quad.offset  # (n_bins, Q)
        self.B = quad.phi[..., :k] @ self.rinv[:k]  # (n_bins, Q, m)
        self.signal_row = self.rinv[k] if template is not None else None

    def theta(self, u: np.ndarray) -> np.ndarray:
        out = self.theta_ref.copy()
        out[: self.k] += self.rinv[: self.k] @ u
        return out

    def cov_theta(self, cov_u: np.ndarray) -> np.ndarray:
        n = self.theta_ref.size
        out = np.zeros((n, n))
        r = self.rinv[: self.k]
        out[: self.k, : self.k] = r @ cov_u @ r.T
        return out

    def terms(self, u: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Quadrature terms w e^g for coordinates u (..., m): shape (..., n_rows, Q)."""
        g = self.g_ref[rows] + np.einsum("bqm,...m->...bq", self.B[rows], u)
        return self.weights[rows] * np.exp(np.minimum(g, EXP_MAX))

    def background(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected background per bin and its derivative d mu / d u, (n_bins,), (n_bins, m)."""
        t = self.terms(u)
        return t.sum(axis=-1), np.einsum("bq,bqm->bm", t, self.B)


def deviance_parts(n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """mu - n + n ln(n/mu) per bin: half the Poisson deviance, 0 at mu = n."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu), 0.0)
    return mu - n + log_term
