"""Nothing in ``src/deploylearn`` outside ``synthetic/`` may know the synthetic world.

The serving rules, features and models must learn from whatever history they are given, so a
string that only the generator uses (a knob it plants, a metric key it emits, a host, a
phrase of its failure messages) must not appear anywhere else in the package. What the
product's interface defines is allowed: the seed's vocabulary, the execution record's fields
and statuses, and the environment, strategy, deployment-type and resource names users pass to
``-e``/``-s``/``-r`` (the seed introduces them; every Ignition history uses them).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from deploylearn.domain import records
from deploylearn.synthetic import catalogue

PACKAGE = Path(records.__file__).parent.parent
ROOT = PACKAGE.parent.parent
# The seed is beside the project (``../shared/seed``), not in it.
SEED_CANDIDATES = [
    Path(os.environ.get("DEPLOYLEARN_SEED", ROOT / "seed.md")),
    ROOT.parent / "shared/seed/deployment-pattern-learning-system.md",
    Path("/work/shared/seed/deployment-pattern-learning-system.md"),
]
SEED = next((p for p in SEED_CANDIDATES if p.is_file()), None)
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9\-]*(?:[_.][A-Za-z0-9\-]+)+")
_WORD = re.compile(r"[a-z][a-z0-9\-]+")
_STOP = frozenset(
    {"the", "and", "for", "from", "with", "into", "onto", "than", "then", "that", "this"}
    | {"those", "these", "must", "be", "been", "was", "were", "not", "any", "all", "one"}
    | {"least", "more", "most", "before", "after", "during", "each", "per", "its", "their"}
    | {"there", "here", "has", "have", "had", "can", "could", "may", "might", "will"}
    | {"would", "should", "name"}
)
_REGEX = re.compile(r"[\[\]\\|^$]")  # a pattern, not text: its tokens are syntax


def _literals(path: Path) -> set[str]:
    """Every string constant of a module, f-string pieces included, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def _content_words(text: str) -> list[str]:
    """The text's words outside identifiers, without short and function words."""
    words = _WORD.findall(_IDENTIFIER.sub(" ", text).lower())
    return [w for w in words if len(w) >= 3 and w not in _STOP]


def _interface_vocabulary() -> set[str]:
    seed = SEED.read_text(encoding="utf-8").lower() if SEED else ""
    words = set(re.findall(r"[a-z0-9_.\-]+", seed))
    words |= set(records.DeploymentExecution.model_fields)
    words |= set(records.TERMINAL_STATUSES)
    for names in (
        catalogue.ENVIRONMENTS,
        catalogue.STRATEGIES,
        catalogue.RESOURCE_TYPES,
        catalogue.DEPLOYMENT_TYPES,
    ):
        words |= set(names)
    return {w.lower() for w in words}


def _generator_only() -> tuple[set[str], set[tuple[str, ...]]]:
    """Identifiers (``cpu_percent``, hosts, template ids) and word triples of its messages."""
    allowed = _interface_vocabulary()
    identifiers: set[str] = set()
    triples: set[tuple[str, ...]] = set()
    seed_text = " ".join(_WORD.findall(SEED.read_text(encoding="utf-8").lower()) if SEED else [])
    for path in (PACKAGE / "synthetic").rglob("*.py"):
        for text in _literals(path):
            if _REGEX.search(text):
                continue
            words = _content_words(text)
            for token in _IDENTIFIER.findall(text):
                if token.lower() not in allowed and not token.startswith("deploylearn."):
                    identifiers.add(token.lower())
            for triple in zip(words, words[1:], words[2:], strict=False):
                if " ".join(triple) not in seed_text:
                    triples.add(triple)
    return identifiers, triples


def _outside_modules() -> list[Path]:
    modules = PACKAGE.rglob("*.py")
    return sorted(p for p in modules if "synthetic" not in p.relative_to(PACKAGE).parts)


@pytest.mark.skipif(SEED is None, reason="the seed (../shared/seed) defines the interface words")
def test_no_module_outside_synthetic_uses_a_generator_only_string() -> None:
    identifiers, triples = _generator_only()
    assert "cpu_percent" in identifiers and ("schema", "lock", "timeout") in triples  # probe
    found: list[str] = []
    for path in _outside_modules():
        for text in _literals(path):
            hits = {t.lower() for t in _IDENTIFIER.findall(text)} & identifiers
            words = _content_words(text)
            hits |= {
                " ".join(t) for t in zip(words, words[1:], words[2:], strict=False) if t in triples
            }
            if hits:
                found.append(f"{path.relative_to(PACKAGE)}: {sorted(hits)} in {text[:70]!r}")
    assert not found, "generator-only strings outside synthetic/:\n" + "\n".join(found)
