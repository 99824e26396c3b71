"""Features for the success model: point-in-time history, configuration, context, time and
structural graph embeddings (GDS FastRP on Neo4j, the same algorithm in numpy elsewhere).

Pure pandas/numpy/scipy: nothing here imports the store, a database driver or MLflow; a
store's frame is built in ``pipeline.training_frame`` (GDS embeddings too). See docs/features.md.
"""

from deploylearn.features.config import (
    context_features,
    knob_features,
    knob_row,
    knob_table,
    resource_features,
    time_features,
)
from deploylearn.features.embeddings import (
    StructuralGraph,
    fastrp,
    fastrp_node_embeddings,
    structural_graph,
)
from deploylearn.features.frame import (
    FastRPParams,
    TrainingFrame,
    embedding_features,
    features_for_candidates,
    training_frame_from_history,
)
from deploylearn.features.history import point_in_time_features

__all__ = [
    "FastRPParams",
    "StructuralGraph",
    "TrainingFrame",
    "context_features",
    "embedding_features",
    "fastrp",
    "fastrp_node_embeddings",
    "features_for_candidates",
    "knob_features",
    "knob_row",
    "knob_table",
    "point_in_time_features",
    "resource_features",
    "structural_graph",
    "time_features",
    "training_frame_from_history",
]
