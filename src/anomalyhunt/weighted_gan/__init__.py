"""Branch ``weighted_gan``: a GAN trained on weighted events, against hit-or-miss unweighting.

Event generators that sample phase space from a simple proposal return weighted events; turning
them into unweighted ones by hit-or-miss (keep an event with probability w / max w) throws away
all but mean(w) / max(w) of them, often below 1 %. Backes, Butter, Plehn and Winterhalder, "How to
GAN event unweighting" (arXiv:2012.07873, SciPost Phys. 10, 089 (2021)) train a GAN whose critic
sees every true event with its weight (the uwGAN); its generator then makes unweighted events
as often as one likes. Here, on a Drell-Yan-like toy (:mod:`.toy`: the Z peak on a falling
continuum, and the Collins-Soper angle with a mass-dependent A_FB, sampled flat), the uwGAN
(:mod:`.model`) is compared with hit-or-miss unweighting of the same events against the exact
truth (:mod:`.metrics`, :mod:`.figures`). ``python -m anomalyhunt.weighted_gan --config ...
--out-dir ...`` runs it (Snakemake target ``weighted_gan``).
"""
