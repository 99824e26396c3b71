"""``DeploymentPatternLearner``: the Python API that notebooks, the CLI and jobs share."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import pandas as pd

from deploylearn.config import Settings
from deploylearn.domain.answers.adaptations import Adaptations
from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.answers.patterns import PatternReport, PatternUsage
from deploylearn.domain.answers.prediction import PredictionAnswer
from deploylearn.domain.answers.recommendations import Recommendations
from deploylearn.domain.answers.rollbacks import RollbackScenarios
from deploylearn.domain.prepared import (
    prepare,
    protect_adaptation,
    protect_planned,
)
from deploylearn.domain.records import (
    DeploymentPattern,
    parse_adaptation,
    parse_planned,
    slugify,
)
from deploylearn.domain.redaction import SecretCipher, reveal
from deploylearn.domain.screen import validate_execution
from deploylearn.domain.tokens import ApiToken, Scope, new_token, token_hash
from deploylearn.errors import (
    ConflictError,
    FieldProblem,
    InvalidRecordError,
    SecretKeyError,
    UnknownExecutionError,
    UnknownPatternError,
)
from deploylearn.ingest.formats import (
    Format,
    export_format,
    write_records,
    write_records_to,
)
from deploylearn.ingest.runner import IngestReport, ingest_file, ingest_workers, write_prepared
from deploylearn.ingest.workers import prepare_rows
from deploylearn.store import Store, open_store
from deploylearn.store.base import KeyRecord

if TYPE_CHECKING:
    from deploylearn.serving.advisor import Advisor
    from deploylearn.serving.models import ServingModels
    from deploylearn.tracking.champion import ChampionRun

# Between answers the serving state follows the clock in steps of at least this (the recent
# window slides, ages grow), as a fresh build a moment later would see the history.
_CLOCK_STEP = pd.Timedelta(seconds=1)


class DeploymentPatternLearner:
    """Records deployment executions and answers questions about them.

    Open one with ``DeploymentPatternLearner.open()`` (embedded DuckDB by default, or
    ``store_url="neo4j://…"``); use it as a context manager to release the store.
    """

    def __init__(
        self, store: Store, settings: Settings | None = None, *, use_model: bool = True
    ) -> None:
        self.store = store
        self.settings = settings or Settings.from_env(store.url)
        self._checked_cipher: SecretCipher | None = None
        self.use_model = use_model
        self._advisor: Advisor | None = None
        self._models: tuple[ServingModels | None] | None = None  # loaded champion, if loaded
        # writes through this learner count up; readers key caches on it (``ign serve``)
        self.history_version = 0
        # seconds an executions frame may be reused while nothing is written through this
        # learner (0: read afresh each time; ``ign serve`` reuses it like the serving state)
        self.frame_max_age = 0.0
        self._frame: tuple[int, float, pd.DataFrame] | None = None

    @classmethod
    def open(
        cls,
        store_url: str | None = None,
        *,
        settings: Settings | None = None,
        use_model: bool = True,
        tracking_uri: str | None = None,
        create: bool = True,
    ) -> Self:
        """``use_model=False`` answers from the empirical prior even if a champion exists;
        ``tracking_uri`` is the MLflow registry holding it (default: ``Settings``);
        ``create=False`` refuses a missing store instead of creating it (see ``open_store``)."""
        settings = settings or Settings.from_env(store_url)
        if tracking_uri:
            settings = replace(settings, tracking_uri=tracking_uri)
        store = open_store(store_url or settings.store_url, create=create)
        return cls(store, settings, use_model=use_model)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def _history_changed(self) -> None:
        """A write went through: the serving state and any reused frame are stale."""
        self._advisor = None
        self._frames_stale()

    def _frames_stale(self) -> None:
        """A write went through: a reused frame is stale (the serving state may be folded)."""
        self._frame = None
        self.history_version += 1

    def executions_frame(self) -> pd.DataFrame:
        """``Store.executions_frame()``, reused for ``frame_max_age`` seconds while nothing
        is written through this learner (callers must not modify it)."""
        now = time.monotonic()
        cached = self._frame
        fresh = cached is not None and now - cached[1] <= self.frame_max_age
        if cached is not None and fresh and cached[0] == self.history_version:
            return cached[2]
        frame = self.store.executions_frame()
        if self.frame_max_age > 0:
            self._frame = (self.history_version, now, frame)
        return frame

    # -- secrets ---------------------------------------------------------------------------
    @property
    def _cipher(self) -> SecretCipher | None:
        """The cipher for ``DEPLOYLEARN_SECRET_KEY`` under this store's salt, checked against
        the store's key record (the first writer with a key sets it); None without a key.
        Raises ``SecretKeyError`` when the key is not the store's."""
        secret_key = self.settings.secret_key
        if not secret_key:
            return None
        if self._checked_cipher is not None:
            return self._checked_cipher
        record = self.store.key_record()
        if record is None:
            salt = os.urandom(16)
            proposed = SecretCipher(secret_key, salt).check_value()
            record = self.store.claim_key_record(
                KeyRecord(base64.b64encode(salt).decode(), proposed), actor=self.settings.actor
            )
        cipher = SecretCipher(secret_key, base64.b64decode(record.salt))
        if not cipher.verifies(record.check):
            raise SecretKeyError(
                "DEPLOYLEARN_SECRET_KEY is not the key this store's secrets are encrypted "
                "under: refused (unset it to write with secrets redacted)"
            )
        self._checked_cipher = cipher
        return cipher

    def get_execution(self, execution_id: str, *, decrypt: bool = False) -> dict[str, Any] | None:
        """One execution in the import/export shape (with ``pattern_id``), None if absent.

        ``decrypt=True`` returns its encrypted secrets in clear, for the holder of the store's
        key (``SecretKeyError`` otherwise); each such read is audited (``decrypt_execution``).
        Redacted secrets (written without a key) cannot be recovered by anyone.
        """
        record = self.store.get_execution(execution_id)
        if record is None or not decrypt:
            return record
        cipher = self._cipher
        if cipher is None:
            raise SecretKeyError("decrypting needs DEPLOYLEARN_SECRET_KEY, the store's key")
        self.store.record_audit("decrypt_execution", execution_id, actor=self.settings.actor)
        revealed: dict[str, Any] = reveal(record, cipher)
        return revealed

    # -- recording -------------------------------------------------------------------------
    def record_deployment_execution(self, **fields: Any) -> str:
        """Record one execution (the seed's keywords, plus optional ``execution_id``).

        Returns the execution id. Recording the same execution again is a no-op that returns
        the same id; reusing an ``execution_id`` for different content raises ``ConflictError``.
        Raises ``InvalidRecordError`` naming each bad field.
        """
        prepared = prepare(validate_execution(fields), self._cipher)
        with self._folding() as written:
            result = self.store.write_executions([prepared], actor=self.settings.actor)
            written.add(result.inserted)
        if result.conflicts:
            raise ConflictError(result.conflicts[0][1])
        return prepared.execution_id

    def delete_execution(self, execution_id: str, *, reason: str) -> dict[str, Any]:
        """Delete a recorded execution (a test run, a record of the wrong system), as if it
        had never been recorded: pattern, issue and rollback-scenario counts and ``stats``
        lose it, and what only it used goes too. Audited (``delete_execution``: ``reason``,
        its pattern and who recorded it when). Returns the deleted record (the export shape),
        so that it can be recorded again. Raises ``UnknownExecutionError``."""
        why = _reason(reason)
        stored = self._stored(execution_id)
        if not self.store.delete_execution(execution_id, actor=self.settings.actor, reason=why):
            raise UnknownExecutionError(f"execution_id: no execution {execution_id!r} to delete")
        self._history_changed()
        return stored

    def amend_execution(
        self, execution_id: str, /, *, reason: str = "amended", **fields: Any
    ) -> dict[str, Any]:
        """Correct a recorded execution: ``fields`` are record keywords with their new values
        (``status``, ``completed_at``, ``failure_reasons``, ``rollback_triggered``,
        ``lessons_learned``, ``configuration_used``, ``deployment_strategy`` …); the
        ``execution_id`` stays. The amended record is validated like a new one, then replaces
        the stored one in one transaction: its pattern is assigned afresh (a configuration or
        strategy change can move it to another pattern), every count follows exactly, and the
        change is audited (``amend_execution``: ``reason`` and the fields changed). Nothing
        changed: nothing written. Returns the stored record. A retry of the original content
        under this id is a conflict from then on (the id now names the amended execution).
        """
        if "execution_id" in fields:
            raise InvalidRecordError(
                [FieldProblem("execution_id", "cannot be amended: delete and record anew")]
            )
        why = _reason(reason)
        stored = self._stored(execution_id)
        changed = sorted(k for k, v in fields.items() if stored.get(k) != v)
        before = prepare(validate_execution({**stored, "execution_id": execution_id}), self._cipher)
        record = {**stored, **fields, "execution_id": execution_id}
        prepared = prepare(validate_execution(record), self._cipher)
        if not changed or prepared.content_hash == before.content_hash:
            return self._stored(execution_id)
        detail = f"{why}; changed {', '.join(changed)}"
        if not self.store.replace_execution(prepared, actor=self.settings.actor, reason=detail):
            raise UnknownExecutionError(f"execution_id: no execution {execution_id!r} to amend")
        self._history_changed()
        return self._stored(execution_id)

    def _stored(self, execution_id: str) -> dict[str, Any]:
        """The stored record (export shape, without ``pattern_id``) or UnknownExecutionError."""
        stored = self.store.get_execution(execution_id)
        if stored is None:
            raise UnknownExecutionError(
                f"execution_id: no execution {execution_id!r} in {self.store.url}"
            )
        stored.pop("pattern_id", None)
        return stored

    def record_executions(
        self,
        records: Iterable[dict[str, Any]],
        *,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
        actor: str | None = None,
    ) -> IngestReport:
        """Bulk-record in-memory records (dicts of the seed's keywords), in batches.

        Errors carry the record's 1-based position as their line. ``actor``: who the writes
        are audited as (default: ``Settings.actor``; ``ign serve``: the token's name).
        """
        with self._folding() as written:
            report = write_prepared(
                self.store,
                prepare_rows(enumerate(records, 1), self._cipher),
                source="<records>",
                actor=actor or self.settings.actor,
                batch_size=batch_size,
                progress=progress,
            )
            written.add(report.inserted_ids)
        return report

    def record_environment_adaptation(self, **fields: Any) -> str:
        """Record an adaptation like the seed's example; returns its id (idempotent)."""
        self._history_changed()
        adaptation = protect_adaptation(parse_adaptation(fields), self._cipher)
        return self.store.record_adaptation(adaptation, actor=self.settings.actor)

    @contextmanager
    def _folding(self) -> Iterator[_Written]:
        """Around a write: the ids it inserted (the body appends them) are folded into the
        serving state, if one is built, so the next answer sees them without a rebuild. A
        write that fails, or inserts more than ``MAX_LISTED_IDS`` rows (``ingest.runner``: the
        report then lists none), drops the state instead: it is rebuilt on the next answer."""
        written = _Written()
        try:
            yield written
        except BaseException:
            self._history_changed()
            raise
        if written.ids or not written.complete:
            self._frames_stale()
        advisor = self._advisor
        if advisor is None or (written.complete and not written.ids):
            return
        if not written.complete:
            self._advisor = None
            return
        try:
            frame = self.store.executions_frame_of(written.ids)
            patterns = None
            if not frame["pattern_id"].isin(advisor.snapshot.patterns).all():
                patterns = self.store.patterns()
            issues = None
            if any(i not in advisor.issue_text for ids in frame["issue_ids"] for i in ids):
                issues = self.store.issues()
            advisor.fold(frame, patterns, issues=issues)
        except BaseException:
            self._advisor = None
            raise

    # -- questions -------------------------------------------------------------------------
    def advisor(self, *, refresh: bool = False) -> Advisor:
        """The serving state (history snapshot + champion), built on first use and reused.

        Recording through this learner folds the executions written into it (a few
        milliseconds, no rebuild: served features see every outcome recorded so far) and keeps
        the loaded champion; the state also moves on with the clock (the recent window slides).
        Call with ``refresh=True`` to see writes made by other processes or a newly promoted
        champion.
        """
        if self._advisor is not None and not refresh:
            advisor = self._advisor
            when = advisor.next_serving_time()
            if when - advisor.snapshot.at >= _CLOCK_STEP:
                advisor.fold(at=when)
            return advisor
        from deploylearn.serving.advisor import Advisor
        from deploylearn.serving.models import check_provenance, load_serving_models

        if self._models is None or refresh:
            self._models = (
                load_serving_models(self.settings.tracking_uri) if self.use_model else None,
            )
        models = self._models[0]
        provenance = check_provenance(models, self.store.store_id())
        self._advisor = Advisor.build(
            self.store.executions_frame(),
            self.store.patterns(),
            models=None if provenance.status == "refused" else models,
            issues=self.store.issues(),
            provenance=provenance,
        )
        return self._advisor

    @property
    def serving_state_loaded(self) -> bool:
        """Whether an answer has loaded the champion (``refresh_champion`` has a reference)."""
        return self._models is not None

    def refresh_champion(self) -> bool:
        """Reload the serving state if the registry's champion is not the one loaded (a
        promotion by ``ign train`` elsewhere); True if it was reloaded. Checks the alias only,
        so a long-running process (``ign serve``) can ask often."""
        if not self.use_model:
            return False
        from deploylearn.tracking.champion import champion_version

        promoted = champion_version(self.settings.tracking_uri)
        loaded = self._models[0] if self._models is not None else None
        current = (loaded.version, loaded.run_id) if loaded is not None else None
        if self._models is not None and promoted == current:
            return False
        self.advisor(refresh=True)
        return True

    def recommend(
        self,
        target_environment: str,
        resource_types: list[str],
        deployment_strategy: str | None = None,
        gateway_host: str | None = None,
        limit: int = 5,
    ) -> Recommendations:
        """Patterns ranked for a context by the champion's probability blended with each
        pattern's time-decayed Beta posterior; with intervals, counts, reasons and similar
        patterns (see ``serving.advisor``)."""
        return self.advisor().recommend(
            slugify(target_environment),
            [slugify(r) for r in resource_types],
            slugify(deployment_strategy) if deployment_strategy else None,
            gateway_host.strip().lower() if gateway_host else None,
            limit,
        )

    def get_deployment_recommendations(
        self,
        target_environment: str,
        resource_types: list[str],
        deployment_strategy: str | None = None,
        gateway_host: str | None = None,
        limit: int = 5,
    ) -> dict[str, Any]:
        """``recommend()`` as JSON (the seed's name and shape)."""
        return self.recommend(
            target_environment, resource_types, deployment_strategy, gateway_host, limit
        ).model_dump(mode="json")

    def predict(self, planned: dict[str, Any] | Iterable[dict[str, Any]]) -> PredictionAnswer:
        """Risk of planned deployments (one dict or several): probability, interval, risk
        factors and the most similar past failures. Raises ``InvalidRecordError`` naming the
        field (and the position, as ``line``, when several are given)."""
        items = [planned] if isinstance(planned, dict) else list(planned)
        parsed = []
        for position, item in enumerate(items, 1):
            try:
                parsed.append(protect_planned(parse_planned(item)))
            except InvalidRecordError as exc:
                raise exc.at_line(position) if len(items) > 1 else exc from None
        return self.advisor().predict(parsed)

    def predict_success(self, planned: dict[str, Any] | Iterable[dict[str, Any]]) -> dict[str, Any]:
        """``predict()`` as JSON."""
        return self.predict(planned).model_dump(mode="json")

    def adaptations(
        self,
        source_environment: str,
        target_environment: str,
        resource_type: str | None = None,
        limit: int = 3,
    ) -> Adaptations:
        """Configuration changes between two environments, mined from successful runs, plus
        recorded adaptations (see ``serving.adaptations``)."""
        from deploylearn.serving.adaptations import environment_adaptations

        source, target = slugify(source_environment), slugify(target_environment)
        answers = environment_adaptations(
            self.executions_frame(),
            self.store.patterns(),
            self.store.adaptations(),
            source_environment=source,
            target_environment=target,
            resource_type=slugify(resource_type) if resource_type else None,
            limit=limit,
        )
        return Adaptations(
            source_environment=source,
            target_environment=target,
            resource_type=resource_type,
            adaptations=answers,
        )

    def get_environment_adaptations(
        self,
        source_environment: str,
        target_environment: str,
        resource_type: str | None = None,
        limit: int = 3,
    ) -> dict[str, Any]:
        """``adaptations()`` as JSON."""
        return self.adaptations(
            source_environment, target_environment, resource_type, limit
        ).model_dump(mode="json")

    def rollback_scenarios(
        self, environment: str, resource_types: list[str] | None = None, limit: int = 3
    ) -> RollbackScenarios:
        """Rollback scenarios learned from rollbacks: triggers, procedures, success odds and
        recovery times (see ``serving.rollbacks``)."""
        from deploylearn.serving.rollbacks import (
            recovery_metric,
            recovery_seconds,
            rollback_scenarios,
        )

        env = slugify(environment)
        resources = [slugify(r) for r in resource_types or []]
        frame = self.executions_frame()
        candidates = recovery_metric(self.store.metric_types())
        name, recovery = recovery_seconds(
            self.store.metrics_frame(metric_types=candidates) if candidates else None,
            frame.loc[frame["rollback_triggered"].fillna(False).astype(bool), "execution_id"],
        )
        answers = rollback_scenarios(
            frame,
            self.store.rollback_scenarios(),
            self.store.issues(),
            environment=env,
            resource_types=resources or None,
            limit=limit,
            recovery_seconds=recovery if len(recovery) else None,
            recovery_basis=name,
            patterns=self.store.patterns(),
        )
        return RollbackScenarios(environment=env, resource_types=resources, scenarios=answers)

    def get_rollback_scenarios(
        self, environment: str, resource_types: list[str] | None = None, limit: int = 3
    ) -> dict[str, Any]:
        """``rollback_scenarios()`` as JSON."""
        return self.rollback_scenarios(environment, resource_types, limit).model_dump(mode="json")

    def analytics(
        self,
        environment: str | None = None,
        days_back: int = 30,
        metric_types: list[str] | None = None,
        as_of: datetime | None = None,
    ) -> DeploymentAnalytics:
        """Rates with intervals, durations, DORA measures, trends with tests and insights
        (see ``serving.analytics``)."""
        from deploylearn.serving.analytics import deployment_analytics

        frame = self.executions_frame()
        metrics = None
        if len(frame) and isinstance(days_back, int) and days_back >= 1:
            # only the window and the one before it are read: no need for every metric ever
            end = pd.Timestamp(as_of) if as_of is not None else frame["started_at"].max()
            since = end - pd.Timedelta(days=2 * days_back + 1)
            metrics = self.store.metrics_frame(since=since.to_pydatetime())
        return deployment_analytics(
            frame,
            environment=slugify(environment) if environment else None,
            days_back=days_back,
            metric_types=metric_types,
            as_of=as_of,
            metrics=metrics,
            known_metrics=self.store.metric_types(),
        )

    def get_deployment_analytics(
        self,
        environment: str | None = None,
        days_back: int = 30,
        metric_types: list[str] | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        """``analytics()`` as JSON (the seed's name and shape)."""
        return self.analytics(environment, days_back, metric_types, as_of).model_dump(mode="json")

    def patterns(self) -> list[DeploymentPattern]:
        """Every pattern with its outcome counts, the most used first."""
        return sorted(self.store.patterns(), key=lambda p: (-p.total_count, p.pattern_id))

    def pattern_history(self, pattern_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A pattern's latest executions (newest first, at most ``limit``), as stored.
        Raises ``UnknownPatternError``."""
        if not any(p.pattern_id == pattern_id for p in self.store.patterns()):
            raise UnknownPatternError(f"pattern_id: no pattern {pattern_id!r} in {self.store.url}")
        frame = self.executions_frame()
        ids = frame.loc[frame["pattern_id"] == pattern_id].sort_values(
            ["started_at", "execution_id"], ascending=False
        )["execution_id"]
        found = (self.store.get_execution(str(i)) for i in ids.head(limit))
        return [record for record in found if record is not None]

    def pattern_usage(
        self,
        environment: str | None = None,
        gateway_host: str | None = None,
        resource_types: list[str] | None = None,
        days_back: int | None = None,
    ) -> PatternUsage:
        """Each pattern's runs, success rate (Wilson interval) and rollbacks under a filter
        (every field optional), the most run first (see ``serving.patterns``)."""
        from deploylearn.serving.patterns import pattern_usage

        return pattern_usage(
            self.executions_frame(),
            self.store.patterns(),
            environment=slugify(environment) if environment else None,
            gateway_host=gateway_host.strip().lower() if gateway_host else None,
            resource_types=[slugify(r) for r in resource_types or []],
            days_back=days_back,
        )

    def pattern_report(self, pattern_id: str) -> PatternReport:
        """One pattern: configuration, runs per environment and per week, nearest patterns.
        Raises ``UnknownPatternError``."""
        from deploylearn.serving.patterns import pattern_report

        found = [p for p in self.store.patterns() if p.pattern_id == pattern_id]
        if not found:
            raise UnknownPatternError(f"pattern_id: no pattern {pattern_id!r} in {self.store.url}")
        similar = self.advisor().similar_patterns(pattern_id)
        return pattern_report(self.executions_frame(), found[0], similar)

    def champion_run(self) -> ChampionRun | None:
        """What the serving champion's training run logged (holdout metrics against its
        baselines, params); None without a champion or a run id."""
        models = self.advisor().models
        if models is None or not models.run_id:
            return None
        from deploylearn.tracking.champion import champion_run

        return champion_run(models.run_id, self.settings.tracking_uri)

    def champion_artifact(self, path: str) -> bytes | None:
        """One artifact the serving champion's run logged (e.g. its calibration figure)."""
        models = self.advisor().models
        if models is None or not models.run_id:
            return None
        from deploylearn.tracking.champion import run_artifact

        return run_artifact(models.run_id, path, self.settings.tracking_uri)

    # -- API tokens (ign serve) -------------------------------------------------------------
    def create_api_token(self, name: str, scopes: Sequence[Scope]) -> str:
        """A new token for ``ign serve`` with these scopes; returns it in clear, the only
        time it is shown (the store keeps its hash). ``ConflictError`` if the name is taken."""
        token = new_token()
        self.store.save_api_token(
            ApiToken(
                name=name,
                scopes=tuple(sorted(set(scopes))),
                token_sha256=token_hash(token),
                created_at=datetime.now(UTC),
                created_by=self.settings.actor,
            ),
            actor=self.settings.actor,
        )
        return token

    def api_tokens(self) -> list[ApiToken]:
        return self.store.api_tokens()

    def revoke_api_token(self, name: str) -> bool:
        """Revoke the active token ``name``; False if there is none."""
        return self.store.revoke_api_token(name, actor=self.settings.actor)

    # -- files -----------------------------------------------------------------------------
    def ingest(
        self,
        path: str | Path,
        *,
        fmt: Format | None = None,
        batch_size: int = 5000,
        progress: Callable[[int], None] | None = None,
        workers: int | None = None,
    ) -> IngestReport:
        """Load a JSONL, JSON-array or CSV file in batches; bad lines are reported, not fatal.

        Re-ingesting the same file adds nothing (ids are caller-supplied or content-derived).
        ``progress`` is called with the number of lines handled after each batch.

        ``workers`` > 1 validates and prepares in that many forked processes, in chunks of
        ``ingest.workers.CHUNK_ROWS`` rows (one transaction each; ``batch_size`` then does not
        apply). Only for stores that write tables (DuckDB) on systems that fork; elsewhere it
        runs in this process. The default picks one worker per CPU (at most ``MAX_WORKERS``)
        for files of ``PARALLEL_MIN_BYTES`` or more. Either way, the stored data and the
        report's counts and errors are the same; errors may be listed in another order.
        """
        with self._folding() as written:
            report = ingest_file(
                self.store,
                path,
                cipher=self._cipher,
                actor=self.settings.actor,
                fmt=fmt,
                batch_size=batch_size,
                progress=progress,
                workers=workers,
            )
            written.add(report.inserted_ids)
        return report

    def ingest_workers(self, path: str | Path, requested: int | None = None) -> int:
        """How many worker processes ``ingest(path, workers=requested)`` uses (1: none)."""
        return ingest_workers(self.store, path, requested)

    def export(
        self,
        path: str | Path | BinaryIO,
        *,
        fmt: Format | None = None,
        overwrite: bool = False,
    ) -> int:
        """Write every execution in the import shape; returns how many were written.

        ``path`` is a file (written atomically: a temporary file renamed into place) or an
        open binary stream (``fmt`` default ``jsonl``). The format comes from ``fmt`` or the
        extension (``ingest.formats.EXPORT_SUFFIXES``); an unknown extension, or an existing
        file without ``overwrite``, is ``OutputFileError``."""
        if not isinstance(path, str | Path):
            return write_records_to(path, self.store.iter_executions(), fmt or "jsonl")
        path = Path(path)
        fmt = export_format(path, fmt)
        return write_records(path, self.store.iter_executions(), fmt, overwrite=overwrite)

@dataclass
class _Written:
    """The ids a write inserted; ``complete`` is False once one was too large to list them."""

    ids: list[str] = field(default_factory=list)
    complete: bool = True

    def add(self, ids: list[str] | None) -> None:
        if ids is None:
            self.complete = False
        else:
            self.ids += ids


def _reason(reason: str) -> str:
    """A delete or amend must say why (it lands in the audit log, scrubbed of secrets)."""
    from deploylearn.domain.redaction import scrub_text

    text = scrub_text(str(reason or "").strip())
    if not text:
        raise InvalidRecordError([FieldProblem("reason", "say why the record is changed")])
    return text[:500]
