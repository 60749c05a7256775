"""Training on Dask: the in-process model (ALS, BayesianMF, ImplicitALS), trained on a
cluster's workers.

    from distributed import Client
    from alsmf import ALS
    from alsmf.distributed import local_cluster, train_distributed

    with local_cluster(2) as cluster, Client(cluster) as client:
        model = train_distributed(ALS(), "ratings.parquet/", client=client)

Ratings are cut into user blocks and item blocks stored on the workers
(:mod:`alsmf.distributed.blocks`); a half-step sends each block only the factor rows it uses
(:mod:`alsmf.distributed.state`; the Gibbs sampler's sweeps: :mod:`alsmf.distributed.gibbs`).
Importing this package imports ``distributed`` only when a cluster is started or a run begins, so
``import alsmf`` stays fast.
"""

from alsmf.distributed.cluster import local_cluster
from alsmf.distributed.trainer import TrainingProgress, train_distributed

__all__ = ["TrainingProgress", "local_cluster", "train_distributed"]
