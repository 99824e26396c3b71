"""The learner's executions-frame reuse (``ign serve`` sets ``frame_max_age``): reused while
nothing is written through the learner, dropped by a write, never kept with age 0."""

from __future__ import annotations

from deploylearn.learner import DeploymentPatternLearner
from tests.conftest import make_record


def test_a_write_drops_the_reused_frame(duckdb_url: str) -> None:
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        learner.record_deployment_execution(**make_record(1))
        learner.frame_max_age = 60.0
        first = learner.executions_frame()
        assert learner.executions_frame() is first  # reused
        version = learner.history_version
        learner.record_deployment_execution(**make_record(2))
        assert learner.history_version == version + 1
        assert len(learner.executions_frame()) == 2
        learner.frame_max_age = 0.0
        assert learner.executions_frame() is not learner.executions_frame()


def test_pattern_usage_and_report_answer_from_the_store(duckdb_url: str) -> None:
    with DeploymentPatternLearner.open(duckdb_url, use_model=False) as learner:
        for i in range(6):
            learner.record_deployment_execution(**make_record(i))
        usage = learner.pattern_usage("Production", resource_types=["project"])
        assert usage.executions == 6 and usage.filter.environment == "production"
        assert learner.pattern_usage("staging").executions == 0
        report = learner.pattern_report(usage.patterns[0].pattern_id)
        assert report.by_environment[0].runs == 6 and report.similar_patterns == []
