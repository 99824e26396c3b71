"""deploylearn: learn which Ignition deployment patterns succeed where, from every execution."""

from deploylearn.config import Settings
from deploylearn.domain.records import DeploymentExecution
from deploylearn.ingest.runner import IngestReport
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.store import open_store
from deploylearn.version import __version__

__all__ = [
    "DeploymentExecution",
    "DeploymentPatternLearner",
    "IngestReport",
    "Settings",
    "__version__",
    "open_store",
]
