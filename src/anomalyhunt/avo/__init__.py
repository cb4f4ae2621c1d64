"""Branch ``avo``: adversarial variational optimization of a non-differentiable simulator.

Louppe, Hermans & Cranmer, "Adversarial Variational Optimization of Non-Differentiable
Simulators", arXiv:1707.07113. A Gaussian proposal over the parameters (E_beam, G_f) of a black-box
e+e- -> mu+ mu- simulator (:mod:`~anomalyhunt.avo.toy`) is moved by score-function (REINFORCE)
gradients of a WGAN-GP critic's verdict (:mod:`~anomalyhunt.avo.model`) until the simulated cos(A)
matches the observed; :mod:`~anomalyhunt.avo.metrics` judges the fit (critic value, KS test,
recovered A_FB, exact likelihood contours), :mod:`~anomalyhunt.avo.figures` draws it. Run it with
``python -m anomalyhunt.avo`` or the Snakemake target ``avo``.
"""
