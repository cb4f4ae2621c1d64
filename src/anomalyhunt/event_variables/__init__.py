"""Branch ``event_variables``: event variables learned by maximising mutual information.

Kim, Kong, Matchev, Park & Shyamsundar, "Deep-Learned Event Variables for Collider
Phenomenology", arXiv:2105.10126. A network V(x) and an auxiliary classifier that tells
(V(x_i), m_i) from (V(x_i), m_j) are trained together (:mod:`~anomalyhunt.event_variables.model`)
on the paper's three decay toys (:mod:`~anomalyhunt.event_variables.toy`); the learned V is
compared with the invariant mass, the transverse mass and M_T2
(:mod:`~anomalyhunt.event_variables.mt2`) by correlation and by I(V; m_A)
(:mod:`~anomalyhunt.event_variables.metrics`). Run it with ``python -m anomalyhunt.event_variables``
or the Snakemake target ``event_variables``.
"""
