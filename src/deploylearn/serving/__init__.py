"""Answers served before the next deployment.

``Advisor`` (recommendations, predict) folds the history into a snapshot once and blends the
champion's probabilities with time-decayed Beta posteriors (``blend``); ``adaptations``,
``rollbacks`` and ``analytics`` are pure functions over store frames. None of it imports a
database driver; MLflow is reached only through ``serving.models`` when a champion exists.
"""

from deploylearn.serving.advisor import Advisor
from deploylearn.serving.blend import BlendParams
from deploylearn.serving.models import ServingModels, load_serving_models
from deploylearn.serving.snapshot import HistorySnapshot

__all__ = ["Advisor", "BlendParams", "HistorySnapshot", "ServingModels", "load_serving_models"]
