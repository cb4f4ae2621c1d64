"""Branch ``pivot``: learning to pivot with an adversary (Louppe, Kagan, Cranmer, arXiv:1611.01046).

A classifier ``f`` that separates signal from background usually also depends on a nuisance
parameter ``Z`` (a systematic: an energy scale, pile-up), so its output distribution, and every
efficiency read off it, moves when ``Z`` does. The paper makes ``f`` a *pivot* (its output
distribution independent of ``Z``) by training it against an adversary ``r`` that tries to
predict ``Z`` from ``f(X)``: ``f`` minimises ``L_f - lambda L_r``, ``r`` minimises ``L_r``, and
``lambda`` trades classification power for independence.

Modules: :mod:`~anomalyhunt.pivot.toy` (the paper's 2-D toy), :mod:`~anomalyhunt.pivot.model`
(classifier, mixture-density adversary, the game through the one training loop),
:mod:`~anomalyhunt.pivot.metrics` (KS distance, mutual information, efficiencies, ROC),
:mod:`~anomalyhunt.pivot.figures`; ``python -m anomalyhunt.pivot`` runs the branch
(Snakemake target ``pivot``).
"""
