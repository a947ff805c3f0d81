"""The graph as plain tables, for the ML side: node ids per type and one edge frame per
relationship type, streamed from the store (no torch here: `gnn.snapshot` turns them into PyG).

Contract:
- node types `user`, `item`, `category`, `brand` (`NODE_TYPES`); any of them may have no nodes;
- relationship types as in `ENDPOINTS` (relationship -> (source type, destination type)), each
  frame with columns `src`, `dst` (ids) and, for behaviour types, `count`, `first_ts`,
  `last_ts`, `split`; a type with no edges is an empty frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd

from graph import queries as Q

log = logging.getLogger(__name__)

NODE_TYPES = {"User": "user", "Item": "item", "Category": "category", "Brand": "brand"}
# relationship type -> (source node type, destination node type)
ENDPOINTS: dict[str, tuple[str, str]] = {
    **{rel: ("user", "item") for rel in Q.BEHAVIOUR_TYPES},
    **{rel: ("item", "item") for rel in Q.ITEM_RELATION_TYPES},
    "IN_CATEGORY": ("item", "category"),
    "HAS_BRAND": ("item", "brand"),
    "SUBCATEGORY_OF": ("category", "category"),
}
BEHAVIOUR_ATTRS = ("count", "first_ts", "last_ts", "split")


def edge_type(rel: str) -> tuple[str, str, str]:
    """('user', 'reviewed', 'item') for REVIEWED: the PyG edge type of a relationship type."""
    src, dst = ENDPOINTS[rel]
    return (src, rel.lower(), dst)


def export_frames(store, progress: Callable[[str, int], None] | None = None
                  ) -> tuple[dict[str, list[str]], dict[str, pd.DataFrame]]:
    """Stream the whole graph from `store` (a GraphStore): ({node type: ids},
    {relationship type: edge frame}). Types without nodes or edges come back empty."""
    node_ids: dict[str, list[str]] = {}
    for label, t in NODE_TYPES.items():
        node_ids[t] = [str(x) for chunk in store.stream(Q.NODE_IDS[label])
                       if "id" in chunk.columns for x in chunk["id"]]
        if progress:
            progress(label, len(node_ids[t]))
    edges: dict[str, pd.DataFrame] = {}
    for rel, stmt in {**Q.BEHAVIOUR_EDGES, **Q.KG_EDGES}.items():
        chunks = [c for c in store.stream(stmt) if not c.empty]
        edges[rel] = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(
            columns=["src", "dst", *(BEHAVIOUR_ATTRS if rel in Q.BEHAVIOUR_TYPES else ())])
        if progress:
            progress(rel, len(edges[rel]))
    return node_ids, edges
