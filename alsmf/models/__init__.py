"""The model families alsmf trains, one module each, all fitting an :class:`~alsmf.model.MFModel`.

=====================  ===========================  =========================================
module                 class                        what it fits
=====================  ===========================  =========================================
``als``                :class:`ALS`                 biased MF by alternating least squares
``bayes``              :class:`BayesianMF`          biased MF by Gibbs sampling (BPMF)
``implicit_als``       :class:`ImplicitALS`         who used what, by weighted ALS (Hu et al.)
``implicit_features``  (used by als and bayes)      who-rated-what, co-factorized (SVD++-like)
=====================  ===========================  =========================================

The simpler methods a model family is compared against live beside this package, in
:mod:`alsmf.baselines`. A new family (a ranking model, say) is a new module here: a frozen
settings class inheriting :class:`alsmf.training.trainer.Trainer`, and a training state that
:mod:`alsmf.training` drives.
"""
