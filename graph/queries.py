"""Every Cypher statement of kgrec, and nothing else.

Rules (checked by tests/graph/test_cypher_lint.py with Neo4j's own Cypher 5 linter):
- values only as $parameters; labels and relationship types come from the fixed sets below,
  never from user input;
- only Cypher that both Neo4j 5 and the embedded ArcadeDB server run: no APOC, no GDS, no
  fulltext indexes, no elementId()/id(): nodes are addressed by their own `id` property.

Statements are `LiteralString`s; a dict of them is keyed by a fixed label or type.
"""

from typing import LiteralString

# --- the schema ---------------------------------------------------------------------------

NODE_LABELS: tuple[LiteralString, ...] = ("User", "Item", "Category", "Brand")
BEHAVIOUR_TYPES: tuple[LiteralString, ...] = ("VIEWED", "CARTED", "PURCHASED", "REVIEWED")
ITEM_RELATION_TYPES: tuple[LiteralString, ...] = ("ALSO_BOUGHT", "ALSO_VIEWED", "BOUGHT_TOGETHER")
KG_TYPES: tuple[LiteralString, ...] = ("IN_CATEGORY", "HAS_BRAND", "SUBCATEGORY_OF")
REL_TYPES: tuple[LiteralString, ...] = (BEHAVIOUR_TYPES + ITEM_RELATION_TYPES + KG_TYPES
                                        + ("RECOMMENDED", "SIMILAR_TO"))

SCHEMA: tuple[LiteralString, ...] = tuple(
    "CREATE CONSTRAINT " + label.lower() + "_id IF NOT EXISTS FOR (n:" + label
    + ") REQUIRE n.id IS UNIQUE"
    for label in NODE_LABELS
)

# --- loading (UNWIND $rows batches; MERGE on ids; SET absolute values so re-runs are idempotent)

MERGE_USERS: LiteralString = "UNWIND $rows AS r MERGE (:User {id: r.id})"

MERGE_ITEMS: LiteralString = """
UNWIND $rows AS r
MERGE (i:Item {id: r.id})
SET i.title = coalesce(r.title, i.title), i.price = coalesce(r.price, i.price)
"""

MERGE_BRANDS: LiteralString = "UNWIND $rows AS r MERGE (b:Brand {id: r.id}) SET b.name = r.name"

MERGE_CATEGORIES: LiteralString = (
    "UNWIND $rows AS r MERGE (c:Category {id: r.id}) SET c.name = r.name"
)

MERGE_IN_CATEGORY: LiteralString = """
UNWIND $rows AS r
MATCH (i:Item {id: r.src}) MATCH (c:Category {id: r.dst})
MERGE (i)-[:IN_CATEGORY]->(c)
"""

MERGE_HAS_BRAND: LiteralString = """
UNWIND $rows AS r
MATCH (i:Item {id: r.src}) MATCH (b:Brand {id: r.dst})
MERGE (i)-[:HAS_BRAND]->(b)
"""

MERGE_SUBCATEGORY_OF: LiteralString = """
UNWIND $rows AS r
MATCH (c:Category {id: r.src}) MATCH (p:Category {id: r.dst})
MERGE (c)-[:SUBCATEGORY_OF]->(p)
"""

MERGE_BEHAVIOUR: dict[str, LiteralString] = {
    rel: "UNWIND $rows AS r MATCH (u:User {id: r.src}) MATCH (i:Item {id: r.dst}) "
         "MERGE (u)-[e:" + rel + "]->(i) "
         "SET e.count = r.count, e.first_ts = r.first_ts, e.last_ts = r.last_ts, "
         "e.split = r.split, e.rating = r.rating"
    for rel in BEHAVIOUR_TYPES
}

MERGE_ITEM_RELATION: dict[str, LiteralString] = {
    rel: "UNWIND $rows AS r MATCH (a:Item {id: r.src}) MATCH (b:Item {id: r.dst}) "
         "MERGE (a)-[:" + rel + "]->(b)"
    for rel in ITEM_RELATION_TYPES
}

# --- counts ---------------------------------------------------------------------------------

COUNT_NODES: dict[str, LiteralString] = {
    label: "MATCH (n:" + label + ") RETURN count(n) AS n" for label in NODE_LABELS
}

COUNT_RELS: dict[str, LiteralString] = {
    rel: "MATCH ()-[r:" + rel + "]->() RETURN count(r) AS n" for rel in REL_TYPES
}

# --- export to PyG (streamed reads, ordered so repeated exports are identical) -------------

NODE_IDS: dict[str, LiteralString] = {
    label: "MATCH (n:" + label + ") RETURN n.id AS id" for label in NODE_LABELS
}

BEHAVIOUR_EDGES: dict[str, LiteralString] = {
    rel: "MATCH (u:User)-[e:" + rel + "]->(i:Item) RETURN u.id AS src, i.id AS dst, "
         "e.count AS count, e.first_ts AS first_ts, e.last_ts AS last_ts, e.split AS split"
    for rel in BEHAVIOUR_TYPES
}

KG_EDGES: dict[str, LiteralString] = {
    "IN_CATEGORY": "MATCH (a:Item)-[:IN_CATEGORY]->(b:Category) RETURN a.id AS src, b.id AS dst",
    "HAS_BRAND": "MATCH (a:Item)-[:HAS_BRAND]->(b:Brand) RETURN a.id AS src, b.id AS dst",
    "SUBCATEGORY_OF": "MATCH (a:Category)-[:SUBCATEGORY_OF]->(b:Category) "
                      "RETURN a.id AS src, b.id AS dst",
    **{rel: "MATCH (a:Item)-[:" + rel + "]->(b:Item) RETURN a.id AS src, b.id AS dst"
       for rel in ITEM_RELATION_TYPES},
}

ITEM_DETAILS: LiteralString = """
MATCH (i:Item)
OPTIONAL MATCH (i)-[:HAS_BRAND]->(b:Brand)
RETURN i.id AS id, i.title AS title, i.price AS price, b.name AS brand
"""

CATEGORY_NAMES: LiteralString = "MATCH (c:Category) RETURN c.id AS id, c.name AS name"

# --- maintenance ----------------------------------------------------------------------------

DELETE_ALL_BATCH: LiteralString = """
MATCH (n) WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS n
"""

PING: LiteralString = "RETURN 1 AS ok"
