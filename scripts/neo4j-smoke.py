#!/usr/bin/env python3
"""Smoke test: Neo4j + GDS reachable and usable from the Python client `graphdatascience` 2.x.

Needs only the standard library, `neo4j` and `graphdatascience` (2.2 verified, see docs/neo4j.md).

    python scripts/neo4j-smoke.py           # bolt://127.0.0.1:$NEO4J_BOLT_PORT (default 7687)
    python scripts/neo4j-smoke.py --uri neo4j://user:pass@host:7687
    DEPLOYLEARN_STORE=neo4j://user:pass@host:7687 python scripts/neo4j-smoke.py

Steps: RETURN gds.version(); create 1000 nodes / 2000 relationships (own label and types, removed
at the end, so it is safe on a shared database); project them with gds.graph.project; FastRP
stream twice with randomSeed and concurrency 1 and require identical embeddings; node similarity
`write` and check the written relationships carry a score; drop the projection; with a bolt://
URI also check that the routing scheme neo4j:// works. Exits 0 on success, 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
import traceback
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

LABEL = "DeploylearnSmoke"
LINK = "DL_SMOKE_LINK"
SIMILAR = "DL_SMOKE_SIMILAR"
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def default_uri() -> str:
    store = os.environ.get("DEPLOYLEARN_STORE", "")
    if store.split("://", 1)[0] in SCHEMES:
        return store
    return f"bolt://127.0.0.1:{os.environ.get('NEO4J_BOLT_PORT', '7687')}"


def split_auth(uri: str) -> tuple[str, tuple[str, str] | None]:
    """neo4j://user:pass@host:7687 -> (neo4j://host:7687, (user, pass))."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        raise SystemExit(
            f"unsupported URI scheme {parts.scheme!r} (want one of {', '.join(SCHEMES)})"
        )
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.hostname or "127.0.0.1"
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), auth


class Steps:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def ok(self, name: str, detail: str = "") -> None:
        print(
            f"[{time.perf_counter() - self.t0:7.2f}s] ok   {name}{': ' + detail if detail else ''}",
            flush=True,
        )


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def embedding_digest(df: Any) -> str:
    h = hashlib.sha256()
    for node_id, emb in sorted(zip(df["nodeId"], df["embedding"], strict=True)):
        h.update(f"{int(node_id)}:{','.join(repr(float(x)) for x in emb)};".encode())
    return h.hexdigest()[:16]


def run(uri: str, auth: tuple[str, str] | None, database: str | None, nodes: int) -> None:
    import neo4j
    from graphdatascience import GraphDataScience
    from graphdatascience import __version__ as client_version

    steps = Steps()
    print(
        f"graphdatascience {client_version}, neo4j driver {neo4j.__version__}, uri {uri}",
        flush=True,
    )

    gds = GraphDataScience(uri, auth=auth, database=database, arrow=False, show_progress=False)
    graph_name = f"dl_smoke_{uuid.uuid4().hex[:8]}"
    try:
        steps.ok("connect", f"GDS server version {gds.server_version()}")

        version = gds.run_cypher("RETURN gds.version() AS v")["v"][0]
        check(str(version).startswith("2."), f"unexpected gds.version() {version!r}")
        steps.ok("RETURN gds.version()", str(version))

        gds.run_cypher(f"MATCH (n:{LABEL}) DETACH DELETE n")
        gds.run_cypher(f"UNWIND range(0, $n - 1) AS i CREATE (:{LABEL} {{idx: i}})", {"n": nodes})
        # A ring plus chords i -> (7i + 3) mod n: connected, not regular, deterministic.
        gds.run_cypher(
            f"MATCH (n:{LABEL}) WITH n ORDER BY n.idx WITH collect(n) AS ns "
            f"UNWIND range(0, size(ns) - 1) AS i "
            f"WITH ns[i] AS a, ns[(i + 1) % size(ns)] AS b, ns[(7 * i + 3) % size(ns)] AS c "
            f"CREATE (a)-[:{LINK}]->(b), (a)-[:{LINK}]->(c)"
        )
        counts = gds.run_cypher(
            f"MATCH (n:{LABEL}) WITH count(n) AS nodes "
            f"MATCH (:{LABEL})-[r:{LINK}]->(:{LABEL}) RETURN nodes, count(r) AS rels"
        ).iloc[0]
        check(
            int(counts["nodes"]) == nodes and int(counts["rels"]) == 2 * nodes,
            f"bad counts {dict(counts)}",
        )
        steps.ok("create data", f"{counts['nodes']} nodes, {counts['rels']} relationships")

        G, project = gds.graph.project.native(
            graph_name, LABEL, {LINK: {"orientation": "UNDIRECTED"}}, read_concurrency=1
        )
        check(project.node_count == nodes, f"projected {project.node_count} nodes")
        check(
            project.relationship_count == 4 * nodes,
            f"projected {project.relationship_count} relationships",
        )
        check(gds.graph.exists(graph_name), "projection missing from the catalog")
        steps.ok(
            "gds.graph.project", f"{project.node_count} nodes, {project.relationship_count} rels"
        )

        emb1 = gds.fast_rp.stream(G, embedding_dimension=16, random_seed=42, concurrency=1)
        emb2 = gds.fast_rp.stream(G, embedding_dimension=16, random_seed=42, concurrency=1)
        check(len(emb1) == nodes, f"FastRP returned {len(emb1)} rows")
        check(all(len(e) == 16 for e in emb1["embedding"]), "wrong embedding dimension")
        check(
            any(any(x != 0 for x in e) for e in emb1["embedding"])
            and all(math.isfinite(x) for e in emb1["embedding"] for x in e),
            "FastRP embeddings are all zero or not finite",
        )
        d1, d2 = embedding_digest(emb1), embedding_digest(emb2)
        check(d1 == d2, f"FastRP not deterministic with randomSeed + concurrency 1: {d1} != {d2}")
        steps.ok("gds.fast_rp.stream x2 (randomSeed=42, concurrency=1)", f"identical, digest {d1}")

        sim = gds.node_similarity.write(
            G, write_relationship_type=SIMILAR, write_property="score", top_k=5, concurrency=1
        )
        check(sim.relationships_written > 0, "node similarity wrote no relationships")
        written = gds.run_cypher(
            f"MATCH (:{LABEL})-[r:{SIMILAR}]->(:{LABEL}) "
            "RETURN count(r) AS c, count(r.score) AS scored, "
            "min(r.score) AS lo, max(r.score) AS hi"
        ).iloc[0]
        check(
            int(written["c"]) == sim.relationships_written,
            f"{written['c']} != {sim.relationships_written}",
        )
        check(
            int(written["scored"]) == int(written["c"]),
            "some similarity relationships have no score",
        )
        check(
            0 < float(written["lo"]) <= float(written["hi"]) <= 1,
            f"scores out of range {dict(written)}",
        )
        steps.ok(
            "gds.node_similarity.write",
            f"{sim.relationships_written} {SIMILAR} rels, "
            f"score {written['lo']:.3f}..{written['hi']:.3f}",
        )

        gds.graph.drop(G)
        check(not gds.graph.exists(graph_name), "projection still in the catalog after drop")
        steps.ok("gds.graph.drop")

        if uri.startswith("bolt://"):
            routed = "neo4j://" + uri[len("bolt://") :]
            with neo4j.GraphDatabase.driver(routed, auth=auth) as driver:
                records, _, _ = driver.execute_query("RETURN 1 AS one", database_=database)
                check(records[0]["one"] == 1, "routing query failed")
            steps.ok("routing scheme", routed)
    finally:
        try:
            gds.graph.drop(graph_name, fail_if_missing=False)
            gds.run_cypher(f"MATCH (n:{LABEL}) DETACH DELETE n")
        finally:
            gds.close()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--uri", default=default_uri(), help="bolt:// or neo4j:// URI, optionally with user:pass@"
    )
    ap.add_argument(
        "--database", default=None, help="database name (default: the server's default)"
    )
    ap.add_argument(
        "--nodes", type=int, default=1000, help="number of nodes to create (default 1000)"
    )
    args = ap.parse_args()
    uri, auth = split_auth(args.uri)
    try:
        run(uri, auth, args.database, args.nodes)
    except Exception as exc:  # report any failure, exit non-zero
        traceback.print_exc()
        print(f"SMOKE FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("SMOKE OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
