"""How good the fitted proposal is: fit quality, not the distance to the true point alone.

The observable depends on (E_beam, G_f) only through A_FB, so the true point cannot be recovered,
only the ridge of equal A_FB through it. A run is judged by what the paper's method promises:
the critic's value (its estimate of the Wasserstein distance between simulated and observed
events) falls towards zero; events simulated from the final proposal pass a two-sample
Kolmogorov-Smirnov test against the observed; the proposal's A_FB matches the observed one within
the statistical error of a direct fit; and its mean lies inside the exact likelihood's contours.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from anomalyhunt.avo.model import AVOFit
from anomalyhunt.avo.toy import MAX_AFB, forward_backward_asymmetry, log_likelihood_of_afb

#: -2 Delta ln L of the 68.3%, 95.4% and 99.7% regions of two parameters (chi^2, 2 dof).
CONTOUR_LEVELS = (2.30, 6.18, 11.83)


def likelihood_grid(
    observed: np.ndarray, beam_energy: np.ndarray, fermi_scale: np.ndarray
) -> np.ndarray:
    """-2 Delta ln L of the observed events over an (E_beam, G_f) grid, exact.

    The events enter only through A_FB, so the log-likelihood is computed on a fine A_FB grid and
    interpolated at A_FB(E_beam, G_f); its minimum over the whole A_FB range is the reference.

    Parameters
    ----------
    observed : array (n,)
        Observed cos(A).
    beam_energy, fermi_scale : arrays
        1-D axes of the grid (GeV, G_f / G_F).

    Returns
    -------
    array (len(fermi_scale), len(beam_energy))
        -2 (ln L - ln L_max), ready for ``contour(beam_energy, fermi_scale, ...)``.
    """
    afb_axis = np.linspace(-MAX_AFB + 1e-4, MAX_AFB - 1e-4, 3001)
    ll = log_likelihood_of_afb(observed, afb_axis)
    ee, gg = np.meshgrid(beam_energy, fermi_scale)
    return -2.0 * (np.interp(forward_backward_asymmetry(ee, gg), afb_axis, ll) - ll.max())


def simulate_proposal(fit: AVOFit, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` parameter points drawn from the fitted proposal and one cos(A) each (numpy)."""
    import torch

    from anomalyhunt.avo.toy import simulate

    dev = fit.game.mean.device
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    theta, _ = fit.game.sample(int(n), gen)
    return theta.cpu().numpy().astype(np.float64), simulate(theta, gen).cpu().numpy()


def summarise(
    fit: AVOFit,
    observed: np.ndarray,
    *,
    afb_fit: float,
    afb_fit_error: float,
    n_simulated: int,
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """A run's numbers for metrics.json, and its simulated cos(A) at the final proposal.

    Parameters
    ----------
    fit : AVOFit
        The finished run (holding its best epoch's proposal).
    observed : array
        Observed cos(A).
    afb_fit, afb_fit_error : float
        The direct maximum-likelihood A_FB of the observed events and its error (the yardstick).
    n_simulated : int
        Events simulated from the final proposal for the KS test and the proposal's A_FB.
    seed : int
        Seeds that simulation.
    """
    theta, sim = simulate_proposal(fit, n_simulated, seed)
    afb_marginal = float(np.mean(forward_backward_asymmetry(theta[:, 0], theta[:, 1])))
    ks = stats.ks_2samp(sim, observed)
    state = fit.game.state()
    mean_e, mean_g = state["mean"]
    afb_axis = np.linspace(-MAX_AFB + 1e-4, MAX_AFB - 1e-4, 3001)
    ll = log_likelihood_of_afb(observed, afb_axis)
    afb_mean = float(forward_backward_asymmetry(mean_e, mean_g))
    delta = float(-2.0 * (np.interp(afb_mean, afb_axis, ll) - ll.max()))
    path = fit.path
    best = fit.result.best_epoch + 1  # path[0] is the state before training
    return {
        "final_beam_energy_gev": mean_e,
        "final_fermi_scale": mean_g,
        "final_width_beam_energy_gev": state["width"][0],
        "final_width_fermi_scale": state["width"][1],
        "afb_at_proposal_mean": afb_mean,
        "afb_of_proposal": afb_marginal,
        "afb_pull": (afb_marginal - afb_fit) / afb_fit_error,
        "minus_2_delta_lnl_at_mean": delta,
        "mean_inside_95pc_contour": bool(delta < CONTOUR_LEVELS[1]),
        "critic_value_start": float(path[0]["critic_value"]),
        "critic_value_first_epoch": float(path[1]["critic_value"]),
        "critic_value_final": float(path[best]["critic_value"]),
        "wasserstein_start": float(path[0]["wasserstein"]),
        "wasserstein_final": float(path[best]["wasserstein"]),
        "ks_statistic": float(ks.statistic),
        "ks_p_value": float(ks.pvalue),
        "ks_passed": bool(ks.pvalue > 0.05),
        "n_simulated": int(n_simulated),
        "best_epoch": int(fit.result.best_epoch),
        "epochs_run": len(fit.result.history),
        "stopped": fit.result.stopped,
        "seconds": round(float(fit.result.seconds), 2),
    }, sim
