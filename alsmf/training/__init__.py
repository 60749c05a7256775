"""What every method's training shares: the one loop, the model builder, the test scorer.

- :mod:`alsmf.training.loop`: iterate a :class:`~alsmf.training.loop.TrainingState`; time,
  record, call back, stop, roll back on Ctrl-C, checkpoint and resume.
- :mod:`alsmf.training.trainer`: the ``fit`` every settings class inherits.
- :mod:`alsmf.training.builder`: the :class:`~alsmf.model.MFModel` over a training set's ids.
- :mod:`alsmf.training.scoring`: train and test RMSE as training reports them.

A method (:mod:`alsmf.models`, :mod:`alsmf.baselines`, the Dask run) only says how to take
one step and how to score it.
"""

from alsmf.training.loop import Checkpoints, TrainingInterrupted, TrainingState, run_training

__all__ = ["Checkpoints", "TrainingInterrupted", "TrainingState", "run_training"]
