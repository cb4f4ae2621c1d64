"""Branch ``showers``: photon showers in a high-granularity calorimeter from a BIB-AE with its
post-processor (Buhmann et al., "Getting High: High Fidelity Simulation of High Granularity
Calorimeters with High Speed", arXiv:2005.05334).

A generative model has to reproduce what a calorimeter physicist reads from showers: visible
energy and resolution, hits above threshold, longitudinal and radial profiles and, hardest, the
cell-energy spectrum with its MIP peak near the readout threshold. The paper's answer is a
bounded-information-bottleneck autoencoder (BIB-AE) followed by a post-processing network that
corrects the cell energies. Here:

- :mod:`~anomalyhunt.showers.toy`: a seeded, vectorised parametric simulator of photon showers in
  a silicon-tungsten sampling calorimeter (Gamma longitudinal profile with fluctuating shape,
  radial core plus tail, per-cell track counts with Landau-like deposits, MIP threshold), standing
  in for Geant4;
- :mod:`~anomalyhunt.showers.model`: the BIB-AE (encoder, decoder, latent critic) and the
  per-cell post-processor;
- :mod:`~anomalyhunt.showers.train`: both trained with the project's one training loop;
- :mod:`~anomalyhunt.showers.metrics`: the paper's observables and their Wasserstein distances;
- :mod:`~anomalyhunt.showers.figures`: the cell-energy spectrum and the shower profiles;
- ``python -m anomalyhunt.showers`` (Snakemake target ``showers``): all of it, writing
  ``results/<run>/showers/metrics.json`` and the figures.
"""
