"""Branch ``fastsim``: fast simulation by adversarial conditional density estimation.

A detector simulation is a conditional density p(x | theta): the reconstructed muon x given the
generator-level one theta. Here it is learned per muon from a toy Z -> mu mu detector
(:mod:`~anomalyhunt.fastsim.toy`: Gaussian cores with wide tails, multiple scattering ~ 1/p, a
charge-dependent curvature bias, an efficiency with cracks) by four samplable models
(:mod:`~anomalyhunt.fastsim.networks`):

* a conditional GAN, generator(noise, theta) -> x against a discriminator(x, theta), as in the
  per-track GAN fast simulations (LHCb's RICH response given the track's kinematics,
  arXiv:1905.11825);
* the same as a WGAN-GP (arXiv:1704.00028: gradient penalty 10, 5 critic steps);
* a conditional normalizing flow (the likelihood reference) and a mixture density network.

:class:`~anomalyhunt.fastsim.simulator.FastSim` turns each into a simulator whose ``sample(theta)``
refuses or clips (and counts) conditions outside the trained range instead of extrapolating.
:mod:`~anomalyhunt.fastsim.metrics` compares them with the detector for the same muons: KS and
Wasserstein distances per feature in pT bins, the correlation-matrix difference, the pT
resolution and its tails against pT, and the generation speed. Run it with
``snakemake --cores all fastsim`` or ``python -m anomalyhunt.fastsim``.
"""
