"""Pattern similarity: nearest neighbours over pattern vectors (graph embedding + configuration).

Two uses: "patterns like this one" for people, and a **cold-start prior** for a pattern with
little or no history: the similarity-weighted success rate of its nearest neighbours with
history. The vector of a pattern is two unit-length blocks, its structural FastRP embedding
(what it touches: gateways, environments, resources, settings) and its standardized
configuration knobs, weighted ``embedding_weight`` and ``1 - embedding_weight``, so that
similarity = w * cos(embedding) + (1 - w) * cos(configuration). Neither block reads an
outcome; outcomes enter only as the neighbours' rates in ``predict``.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted


class PatternSimilarity(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
    """k nearest patterns by cosine similarity of (embedding, configuration) vectors.

    Args:
        n_neighbors: neighbours used for the prior and returned by ``similar`` by default.
        embedding_weight: share of the embedding block in the similarity (0 = knobs only).
        prior_strength: k; a neighbour's rate is shrunk to the global rate with k pseudo-runs
            and weighted by runs / (runs + k), so a neighbour seen twice counts little.
        embedding_prefix: columns starting with it form the embedding block.
    """

    def __init__(
        self,
        n_neighbors: int = 5,
        embedding_weight: float = 0.5,
        prior_strength: float = 10.0,
        embedding_prefix: str = "emb_",
    ) -> None:
        self.n_neighbors = n_neighbors
        self.embedding_weight = embedding_weight
        self.prior_strength = prior_strength
        self.embedding_prefix = embedding_prefix

    def fit(self, X: pd.DataFrame, y: Any = None, sample_weight: Any = None) -> PatternSimilarity:
        """``X``: one row per pattern (index = pattern id); ``y``: its success rate (NaN if
        unknown); ``sample_weight``: its number of runs with an outcome."""
        if not 0.0 <= self.embedding_weight <= 1.0:
            raise ValueError("embedding_weight must be in [0, 1]")
        if self.n_neighbors < 1:
            raise ValueError("n_neighbors must be at least 1")
        if len(X) == 0:
            raise ValueError("PatternSimilarity needs at least one pattern")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.embedding_columns_ = [c for c in X.columns if str(c).startswith(self.embedding_prefix)]
        self.config_columns_ = [c for c in X.columns if c not in self.embedding_columns_]
        config = X[self.config_columns_].to_numpy(dtype=np.float64)
        with np.errstate(all="ignore"):
            center = np.nanmedian(config, axis=0) if config.size else np.zeros(0)
        self.center_ = np.nan_to_num(center)
        filled = np.where(np.isnan(config), self.center_, config)
        scale = filled.std(axis=0) if len(filled) else np.ones(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.pattern_ids_ = np.asarray([str(i) for i in X.index], dtype=object)
        self.vectors_ = self._vectors(X)
        n = len(X)
        rates = np.full(n, np.nan) if y is None else np.asarray(y, dtype=np.float64)
        runs = np.zeros(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        runs = np.where(np.isnan(rates), 0.0, np.nan_to_num(runs))
        self.runs_ = runs
        total = runs.sum()
        self.global_rate_ = float(np.nansum(rates * runs) / total) if total > 0 else 0.5
        k = float(self.prior_strength)
        self.rates_ = (np.nan_to_num(rates) * runs + k * self.global_rate_) / (runs + k)
        self.index_ = NearestNeighbors(n_neighbors=min(self.n_neighbors + 1, n)).fit(self.vectors_)
        return self

    def _vectors(self, X: pd.DataFrame) -> np.ndarray:
        frame = X.reindex(columns=self.feature_names_in_)
        config = frame[self.config_columns_].to_numpy(dtype=np.float64)
        config = (np.where(np.isnan(config), self.center_, config) - self.center_) / self.scale_
        embedding = np.nan_to_num(frame[self.embedding_columns_].to_numpy(dtype=np.float64))
        w = float(self.embedding_weight)
        return np.hstack([np.sqrt(w) * _unit(embedding), np.sqrt(1 - w) * _unit(config)])

    def _neighbours(self, X: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "index_")
        n = min(n, len(self.pattern_ids_))
        distance, position = self.index_.kneighbors(self._vectors(X), n_neighbors=n)
        return 1.0 - distance**2 / 2.0, position  # cosine similarity of the combined vectors

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The cold-start prior: similarity- and evidence-weighted rate of the neighbours."""
        similarity, position = self._neighbours(X, self.n_neighbors)
        runs = self.runs_[position]
        weight = np.clip(similarity, 0.0, None) * runs / (runs + float(self.prior_strength))
        total = weight.sum(axis=1)
        mixed = (weight * self.rates_[position]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, mixed / total, self.global_rate_)

    def similar(self, pattern_id: str, n: int | None = None) -> pd.DataFrame:
        """The ``n`` patterns most similar to a fitted pattern (itself excluded)."""
        check_is_fitted(self, "index_")
        where = np.flatnonzero(self.pattern_ids_ == str(pattern_id))
        if not len(where):
            raise KeyError(f"unknown pattern {pattern_id!r}")
        n = self.n_neighbors if n is None else n
        vector = self.vectors_[where[:1]]
        distance, position = self.index_.kneighbors(
            vector, n_neighbors=min(n + 1, len(self.pattern_ids_))
        )
        rows = [
            (str(self.pattern_ids_[p]), 1.0 - d**2 / 2.0, self.rates_[p], self.runs_[p])
            for d, p in zip(distance[0], position[0], strict=True)
            if p != where[0]
        ][:n]
        return pd.DataFrame(rows, columns=["pattern_id", "similarity", "smoothed_rate", "runs"])


def _unit(block: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    if block.shape[1] == 0:
        return block
    norm = np.linalg.norm(block, axis=1, keepdims=True)
    return cast(np.ndarray, np.divide(block, norm, out=np.zeros_like(block), where=norm > 0))
