"""What in a request the history has never seen, each with a did-you-mean from difflib.

A typo (``prod`` for ``production``) is otherwise scored as a plausible cold start: the model
and the empirical prior both answer something, and a CI gate passes on it. So every answer
names the environments, strategies, gateways and resource types it has never seen (and the
configuration keys no pattern ever used), and the risk gate (``serving.risk_gate``) fails on
an unknown context unless told to allow it. Configuration keys only warn: a new knob is how
configurations evolve, and the model cannot weigh a knob it never saw either way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import pandas as pd

from deploylearn.domain.identity import canonical_template
from deploylearn.domain.records import DeploymentPattern

CONFIGURATION_KEYS = "configuration_keys"
# Request fields whose unknown value fails the risk gate (configuration keys only warn).
GATING_FIELDS = (
    "target_environment",
    "source_environment",
    "deployment_strategy",
    "gateway_host",
    "resources_deployed",
)
_LABEL = {
    "target_environment": "environment",
    "source_environment": "source environment",
    "deployment_strategy": "strategy",
    "gateway_host": "gateway",
    "resources_deployed": "resource type",
    CONFIGURATION_KEYS: "configuration key",
}
MAX_LISTED = 8  # known values listed in a warning when there are this few
SIMILARITY_CUTOFF = 0.5  # difflib ratio; "prod" vs "production" is 0.57


@dataclass(frozen=True)
class Vocabulary:
    """Every value the history holds, per request field."""

    environments: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()
    gateways: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    configuration_keys: frozenset[str] = frozenset()

    @classmethod
    def build(cls, frame: pd.DataFrame, patterns: Sequence[DeploymentPattern]) -> Vocabulary:
        """From ``Store.executions_frame()`` and ``Store.patterns()``."""
        if not len(frame):
            return cls(strategies=frozenset(p.deployment_strategy for p in patterns))
        environments = _values(frame["target_environment"]) | _values(frame["source_environment"])
        bundles = [b for b in frame["resources_deployed"].to_numpy() if b is not None]
        resources = {str(r) for r in set(chain.from_iterable(bundles))}  # 3x faster than explode
        return cls(
            environments=frozenset(environments),
            strategies=frozenset(_values(frame["deployment_strategy"]))
            | frozenset(p.deployment_strategy for p in patterns),
            gateways=frozenset(_values(frame["gateway_host"])),
            resources=frozenset(resources),
            configuration_keys=frozenset(k for p in patterns for k in p.configuration_template),
        )

    def including(self, frame: pd.DataFrame, patterns: Sequence[DeploymentPattern]) -> Vocabulary:
        """This vocabulary and the values of rows just written (and of every pattern)."""
        new = Vocabulary.build(frame, patterns)
        return Vocabulary(
            environments=self.environments | new.environments,
            strategies=self.strategies | new.strategies,
            gateways=self.gateways | new.gateways,
            resources=self.resources | new.resources,
            configuration_keys=self.configuration_keys | new.configuration_keys,
        )

    @property
    def empty(self) -> bool:
        return not (self.environments or self.gateways or self.resources)

    def known(self, name: str) -> frozenset[str]:
        return {
            "target_environment": self.environments,
            "source_environment": self.environments,
            "deployment_strategy": self.strategies,
            "gateway_host": self.gateways,
            "resources_deployed": self.resources,
            CONFIGURATION_KEYS: self.configuration_keys,
        }[name]

    def check(
        self,
        *,
        target_environment: str | None = None,
        source_environment: str | None = None,
        deployment_strategy: str | None = None,
        gateway_host: str | None = None,
        resources_deployed: Iterable[str] = (),
        configuration: Mapping[str, Any] | None = None,
    ) -> Unknowns:
        """The values of a request (already normalized like stored ones) never seen."""
        values: dict[str, str | list[str]] = {}
        for name, value in (
            ("target_environment", target_environment),
            ("source_environment", source_environment),
            ("deployment_strategy", deployment_strategy),
            ("gateway_host", gateway_host),
        ):
            if value and value not in self.known(name):
                values[name] = value
        lists = {
            "resources_deployed": sorted(set(resources_deployed)),
            CONFIGURATION_KEYS: sorted(canonical_template(configuration or {})),
        }
        for name, items in lists.items():
            missing = [item for item in items if item not in self.known(name)]
            if missing:
                values[name] = missing
        return Unknowns(values, self)


@dataclass(frozen=True)
class Unknowns:
    """The unknown values of one request; empty when everything was seen before."""

    values: dict[str, str | list[str]]
    vocabulary: Vocabulary

    @property
    def gating(self) -> dict[str, str | list[str]]:
        """The unknown values that fail the risk gate."""
        return {k: v for k, v in self.values.items() if k in GATING_FIELDS}

    def did_you_mean(self) -> dict[str, str]:
        """Per unknown value, the closest known value of its field (when one is close)."""
        out: dict[str, str] = {}
        for name, value in self.values.items():
            for item in [value] if isinstance(value, str) else value:
                guess = suggestion(item, self.vocabulary.known(name))
                if guess is not None:
                    out[item] = guess
        return out

    def warnings(self) -> list[str]:
        """One readable sentence per unknown field."""
        if not self.values:
            return []
        if self.vocabulary.empty:
            return [
                "the store holds no deployment history: nothing about this context is known "
                "(is --store the right store?)"
            ]
        guesses = self.did_you_mean()
        out = []
        for name, value in self.values.items():
            items = [value] if isinstance(value, str) else value
            shown = ", ".join(
                f"{item!r}" + (f" (did you mean {guesses[item]!r}?)" if item in guesses else "")
                for item in items
            )
            known = sorted(self.vocabulary.known(name))
            listed = f"; known: {', '.join(known)}" if 0 < len(known) <= MAX_LISTED else ""
            noun = _LABEL[name] + ("s" if len(items) > 1 else "")
            out.append(f"unknown {noun} {shown}: never seen in this store{listed}")
        return out

    def as_answer(self) -> dict[str, Any]:
        """The answer's fields: ``unknown``, ``did_you_mean``, ``warnings`` (always present)."""
        return {
            "unknown": dict(self.values),
            "did_you_mean": self.did_you_mean(),
            "warnings": self.warnings(),
        }


def suggestion(value: str, known: Iterable[str]) -> str | None:
    """The known value a person most likely meant: the closest one that starts with
    ``value`` (``prod`` → ``production``), else difflib's closest above the cutoff."""
    choices = sorted(known)
    starts = [c for c in choices if c.startswith(value) or value.startswith(c)]
    pool = starts or choices
    close = difflib.get_close_matches(value, pool, n=1, cutoff=0.0 if starts else SIMILARITY_CUTOFF)
    return close[0] if close else None


def _values(column: pd.Series) -> set[str]:
    return {str(v) for v in column.dropna().unique() if str(v)}
