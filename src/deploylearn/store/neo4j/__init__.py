"""The Neo4j store (``store``), all its Cypher (``cypher``) and Graph Data Science (``gds``)."""
