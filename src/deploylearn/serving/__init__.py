"""Answers served before the next deployment (pure functions over store frames)."""

from deploylearn.serving.recommendations import Recommendation, rank_patterns

__all__ = ["Recommendation", "rank_patterns"]
