"""Branch ``gan_events``: an event GAN with an MMD term on the W and top masses.

After A. Butter, T. Plehn and R. Winterhalder, "How to GAN LHC events", SciPost Phys. 7, 075
(2019), arXiv:1907.03764: a GAN learns parton-level pp -> t tbar -> (b q q')(bbar q q') events
as the 18 momenta of the six quarks. The momenta alone do not tell it that three quarks must
combine to a top within its 1.5 GeV width, so its mass peaks come out far too broad; a maximum
mean discrepancy (MMD) between generated and true W and top masses, added to the generator's
loss, restores the Breit-Wigner peaks.

Modules: :mod:`.toy` (the events, in numpy), :mod:`.model` (networks, MMD term, training),
:mod:`.metrics` (per-bin GAN/truth ratios, peak widths), :mod:`.figures`; the command is
``python -m anomalyhunt.gan_events`` (Snakemake target ``gan_events``).
"""
