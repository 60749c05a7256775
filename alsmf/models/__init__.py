"""The model families alsmf trains, one module each, all fitting an :class:`~alsmf.model.MFModel`.

=====================  ===========================  =========================================
module                 class                        what it fits
=====================  ===========================  =========================================
``als``                :class:`ALS`                 biased MF by alternating least squares
``bayes``              :class:`BayesianMF`          biased MF by Gibbs sampling (BPMF)
``implicit_features``  (used by both)               who-rated-what, co-factorized (SVD++-like)
=====================  ===========================  =========================================

The simpler methods a model family is compared against live beside this package, in
:mod:`alsmf.baselines`. A new family (implicit-feedback ALS, say) is a new module here: a frozen
settings class with ``fit`` and ``params``, and a training state that :mod:`alsmf.training`
drives.
"""
