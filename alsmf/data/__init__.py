"""Data: reading ratings, MovieLens releases, synthetic data, filters and splits."""
