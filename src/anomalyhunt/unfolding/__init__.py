"""Branch ``unfolding``: parton-level Z W -> (l+ l-)(j j) events unfolded from their detector events.

Three methods on one toy (:mod:`.toy`), all judged against the parton truth:

* a fully conditional GAN with an MMD on the Z and W masses (Bellagente et al., "How to GAN away
  detector effects", arXiv:1912.00477), :mod:`.model`;
* a conditional invertible network, whose per-event posteriors are tested for calibration
  (Bellagente et al., "Invertible networks or partons to detector and back again",
  arXiv:2006.06685), :mod:`.model`;
* OmniFold, iterated classifier reweighting (Andreassen et al., arXiv:1911.09107), on its
  Gaussian example and on the Z W toy, :mod:`.omnifold`.

Run it with ``snakemake --cores all unfolding`` or
``python -m anomalyhunt.unfolding --config results/<run>/config.yaml --out-dir <folder>``.
"""
