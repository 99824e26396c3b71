"""A synthetic Ignition deployment world with a known success model (the oracle).

``SyntheticWorld(seed=...).generate(n)`` streams records in the seed's keywords, each batch
with the true success probability it was drawn with; ``success_probability`` scores any
candidate. See docs/synthetic-world.md.
"""

from deploylearn.synthetic.catalogue import Template
from deploylearn.synthetic.world import SyntheticWorld, WorldBatch

__all__ = ["SyntheticWorld", "Template", "WorldBatch"]
