"""deploylearn: learn which Ignition deployment patterns succeed where, from every execution."""

from deploylearn.config import Settings
from deploylearn.learner import DeploymentPatternLearner, IngestReport
from deploylearn.records import DeploymentExecution
from deploylearn.store import open_store

__version__ = "0.1.0"

__all__ = [
    "DeploymentExecution",
    "DeploymentPatternLearner",
    "IngestReport",
    "Settings",
    "__version__",
    "open_store",
]
