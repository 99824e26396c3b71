"""Group failure reasons that name one cause in different words, from the texts alone.

Why from the texts: a history's failure messages are whatever its gateways and tools write,
so no list of known messages can name them. Each reason arrives normalized
(``identity.normalize_issue``: hosts, paths, numbers, hex, quoted values replaced by
placeholders); here every token that still holds a digit goes too (``plc-07``,
``sqlth_12_data``), placeholders and small words are dropped, and the remaining words are
weighted by TF-IDF (a word every message has says little). Reasons are then clustered by
average-linkage agglomerative clustering on cosine distance, cut at ``DISTANCE``: two
wordings join when, on average, their weighted words mostly agree, so ``schema lock timeout
on batch_records`` meets ``… on oee_events`` while ``connection refused`` stays apart.

Only the ``MAX_CLUSTERED`` most frequent wordings are clustered (the pairwise distances grow
with the square); each rarer one joins the nearest cluster centroid within ``DISTANCE`` or
stays a group of its own. A group is named by its commonest wording, keeping the words every
member shares.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer

DISTANCE = 0.5  # cosine distance at which clusters stop merging (similarity 0.5)
MAX_CLUSTERED = 1500
NAME_WORDS = 8

_PLACEHOLDER = re.compile(r"<[a-z]+>")
_TOKEN = re.compile(r"<[a-z]+>|[a-z][a-z0-9_]*|\d[a-z0-9_]*")
_STOP = frozenset(
    {"a", "an", "the", "on", "in", "at", "to", "of", "for", "from", "by", "with", "after"}
    | {"before", "during", "is", "was", "be", "been", "and", "or", "not", "than", "then"}
    | {"this", "that", "it", "its", "as", "into", "while", "were", "are", "has", "had"}
)


@dataclass
class TriggerGroup:
    """Issues that name one cause in different words."""

    name: str
    leader: str  # the most frequent member's normalized text
    example: str
    members: dict[str, str] = field(default_factory=dict)  # issue_id -> normalized


def content_words(normalized: str) -> list[str]:
    """The words that can name a cause: no placeholders, digits or small words."""
    return [
        t
        for t in _TOKEN.findall(_PLACEHOLDER.sub(" ", normalized.lower()))
        if t not in _STOP and not any(c.isdigit() for c in t) and len(t) > 1
    ]


def group_reasons(
    frequency: Mapping[str, int], texts: Mapping[str, tuple[str, str]]
) -> list[TriggerGroup]:
    """Groups of the issue ids in ``frequency`` (id -> count); ``texts`` id -> (normalized,
    example). Ids without a text become a group each, named ``issue <id>``."""
    order = sorted(frequency, key=lambda i: (-frequency[i], i))
    groups: dict[str, TriggerGroup] = {}
    readable: list[str] = []
    for iid in order:
        if iid in texts and content_words(texts[iid][0]):
            readable.append(iid)
        else:  # nothing to compare: its own group, never merged
            normalized, example = texts.get(iid, (f"issue {iid}", ""))
            groups.setdefault(normalized, TriggerGroup(normalized, normalized, example))
            groups[normalized].members[iid] = normalized
    for cluster in _clusters([texts[i][0] for i in readable]):
        members = [readable[i] for i in cluster]  # most frequent first
        leader, example = texts[members[0]]
        shared = set.intersection(*(set(content_words(texts[m][0])) for m in members))
        name = _name(leader, shared)
        group = groups.setdefault(name, TriggerGroup(name, leader, example))
        group.members.update({m: texts[m][0] for m in members})
    return list(groups.values())


def _clusters(documents: list[str]) -> list[list[int]]:
    """Indices of ``documents`` per cluster, each in input order (clusters by first member)."""
    if not documents:
        return []
    if len(documents) == 1:
        return [[0]]
    vectors = TfidfVectorizer(
        analyzer=content_words, sublinear_tf=True, norm="l2", dtype=np.float64
    ).fit_transform(documents)
    head = min(len(documents), MAX_CLUSTERED)
    labels = np.full(len(documents), -1, dtype=np.int64)
    if head == 1:
        labels[0] = 0
    else:
        labels[:head] = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=DISTANCE
        ).fit_predict(vectors[:head].toarray())
    if head < len(documents):
        n = int(labels[:head].max()) + 1
        centroids = np.vstack(
            [np.asarray(vectors[:head][labels[:head] == c].mean(axis=0)) for c in range(n)]
        )
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        similarity = np.asarray(vectors[head:] @ centroids.T)
        best = similarity.argmax(axis=1)
        near = similarity[np.arange(len(best)), best] >= 1 - DISTANCE
        labels[head:] = np.where(near, best, n + np.arange(len(best)))
    out: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(int(label), []).append(i)
    return sorted(out.values(), key=lambda members: members[0])


def _name(leader: str, shared: set[str]) -> str:
    """The leader's words that every member shares, in order, with the small words that join
    two of them (``timeout on database`` keeps its ``on``); at most ``NAME_WORDS`` words."""
    tokens = _TOKEN.findall(_PLACEHOLDER.sub(" ", leader.lower()))
    kept: list[str] = []
    for i, token in enumerate(tokens):
        joins = token in _STOP and kept and i + 1 < len(tokens) and tokens[i + 1] in shared
        if token in shared or joins:
            kept.append(token)
    return " ".join(kept[:NAME_WORDS]).replace("_", " ") or leader[:60]
