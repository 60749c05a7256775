"""alsmf: matrix factorization recommender trained by Alternating Least Squares."""

__version__ = "0.1.0"
