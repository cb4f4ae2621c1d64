"""Branch ``ganplify``: GANplifying event samples (Butter, Diefenbacher, Kasieczka, Nachman, Plehn,
arXiv:2008.06545, SciPost Phys. 10, 139 (2021)).

Can a generative network trained on N events produce more than N events' worth of statistical
precision? On three toys with exactly known densities (a 1-D camel, a 2-D ring, a 5-D shell) a GAN
is trained on N true events and sampled many times; space is cut into cells of equal true
probability and the mean squared error of the cell probabilities is compared with that of the
training sample and of a fit of the right functional form. Inverting the 1/n law of true samples
turns the GAN's MSE into an equivalent number of true events, and the amplification factor
N_equiv / N (:mod:`.metrics`).

Modules: :mod:`.toy` (toys and their cells), :mod:`.metrics` (quantile MSE, 1/n law),
:mod:`.fit` (the fit baseline), :mod:`.model` (the GAN), :mod:`.experiment` (one toy and N),
:mod:`.figures`; ``python -m anomalyhunt.ganplify`` runs it all (Snakemake target ``ganplify``).
"""
