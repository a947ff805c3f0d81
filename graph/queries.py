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
BEHAVIOUR_TYPES: tuple[LiteralString, ...] = ("VIEWED", "CARTED", "FAVORITED", "PURCHASED",
                                              "REVIEWED")
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

SAMPLE_USER_IDS: LiteralString = "MATCH (u:User) RETURN u.id AS id LIMIT $n"

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

# --- recommendations, explanations, recipes (issue 4) ---------------------------------------
# Write-back replaces a user's (or item's) previous edges of the same model and creates the new
# ones in ONE statement, so each batch is one transaction and a reader never sees half a list.

REPLACE_RECOMMENDATIONS: LiteralString = """
UNWIND $rows AS r
MATCH (u:User {id: r.user_id})
OPTIONAL MATCH (u)-[old:RECOMMENDED {model: $model}]->(:Item)
DELETE old
WITH DISTINCT u, r
UNWIND r.recs AS rec
MATCH (i:Item {id: rec.item_id})
WITH u, collect({rec: rec, item: i}) AS found
UNWIND found AS f
WITH u, f.rec AS rec, f.item AS i, size(found) AS list_size
CREATE (u)-[:RECOMMENDED {score: rec.score, rank: rec.rank, model: $model, run_id: $run_id,
                          created_at: $created_at, list_size: list_size}]->(i)
RETURN count(*) AS n
"""

REPLACE_SIMILAR_ITEMS: LiteralString = """
UNWIND $rows AS r
MATCH (a:Item {id: r.item_id})
OPTIONAL MATCH (a)-[old:SIMILAR_TO {model: $model}]->(:Item)
DELETE old
WITH DISTINCT a, r
UNWIND r.similar AS s
MATCH (b:Item {id: s.item_id})
CREATE (a)-[:SIMILAR_TO {score: s.score, rank: s.rank, model: $model, run_id: $run_id}]->(b)
RETURN count(*) AS n
"""

RECOMMENDED_PER_USER: LiteralString = """
MATCH (u:User)-[r:RECOMMENDED {run_id: $run_id}]->(:Item)
RETURN u.id AS user_id, count(r) AS n
"""

RECOMMENDED_SUMMARY: LiteralString = """
MATCH (u:User)-[r:RECOMMENDED {run_id: $run_id}]->(:Item)
WITH u, count(r) AS n
RETURN count(u) AS users, sum(n) AS edges, min(n) AS min_per_user, max(n) AS max_per_user
"""

SIMILAR_SUMMARY: LiteralString = """
MATCH (a:Item)-[s:SIMILAR_TO {run_id: $run_id}]->(:Item)
WITH a, count(s) AS n
RETURN count(a) AS items, sum(n) AS edges, min(n) AS min_per_item, max(n) AS max_per_item
"""

USER_RECOMMENDATIONS: LiteralString = """
MATCH (u:User {id: $user_id})-[r:RECOMMENDED {model: $model}]->(i:Item)
RETURN i.id AS item_id, i.title AS title, r.score AS score, r.rank AS rank, r.run_id AS run_id,
       r.created_at AS created_at, r.list_size AS list_size
ORDER BY r.rank
"""

ITEM_TITLES: LiteralString = """
UNWIND $ids AS id
MATCH (i:Item {id: id})
RETURN i.id AS id, i.title AS title
"""

# A few users' current histories (fold-in without exporting the graph; a user without edges
# comes back once with rel null) and what a user has done with one item (`kgrec explain`).
USER_HISTORIES: LiteralString = (
    "UNWIND $ids AS id MATCH (u:User {id: id}) "
    "OPTIONAL MATCH (u)-[e:" + "|".join(BEHAVIOUR_TYPES) + "]->(i:Item) "
    "RETURN u.id AS user_id, type(e) AS rel, i.id AS item_id, e.count AS count, "
    "e.first_ts AS first_ts, e.last_ts AS last_ts, e.split AS split"
)

USER_ITEM_BEHAVIOURS: LiteralString = (
    "MATCH (u:User {id: $user_id})-[e:" + "|".join(BEHAVIOUR_TYPES) + "]->"
    "(i:Item {id: $item_id}) "
    "RETURN type(e) AS behaviour, e.count AS count, e.first_ts AS first_ts, "
    "e.last_ts AS last_ts"
)

# Explanations: bounded, fixed-length patterns per path type, anchored at both ends (the item's
# neighbours are collected first, which keeps every query to a few milliseconds on Beauty).

EXPLAIN_ENDPOINTS: LiteralString = """
OPTIONAL MATCH (u:User {id: $user_id})
OPTIONAL MATCH (i:Item {id: $item_id})
RETURN u IS NOT NULL AS user_found, i IS NOT NULL AS item_found, i.title AS item_title
"""

CATEGORY_STATS: LiteralString = """
MATCH (c:Category)
RETURN c.id AS id, c.name AS name, COUNT { (c)<-[:IN_CATEGORY]-(:Item) } AS items,
       COUNT { (c)-[:SUBCATEGORY_OF]->(:Category) } AS parents,
       COUNT { (c)<-[:SUBCATEGORY_OF]-(:Category) } AS children
"""

EXPLAIN_PATHS: dict[str, LiteralString] = {
    # (u)-[behaviour]->(x)-[ALSO_BOUGHT|BOUGHT_TOGETHER|ALSO_VIEWED]-(i): length 2
    "item_relation": """
MATCH (u:User {id: $user_id})-[:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(m:Item)
WITH u, collect(m.id) AS owned
MATCH (i:Item {id: $item_id})-[r:BOUGHT_TOGETHER|ALSO_BOUGHT|ALSO_VIEWED]-(x:Item)
WHERE x.id IN owned AND x.id <> $item_id
MATCH (u)-[b:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(x)
RETURN DISTINCT x.id AS x_id, x.title AS x_title, type(b) AS behaviour, type(r) AS rel,
       i.title AS i_title
LIMIT $limit
""",
    # (u)-[behaviour]->(x)-[HAS_BRAND]->(brand)<-[HAS_BRAND]-(i): length 3
    "same_brand": """
MATCH (i:Item {id: $item_id})-[:HAS_BRAND]->(br:Brand)
WITH i, collect(br.id) AS brands
MATCH (u:User {id: $user_id})-[b:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(x:Item)
      -[:HAS_BRAND]->(br:Brand)
WHERE br.id IN brands AND x.id <> $item_id
RETURN DISTINCT x.id AS x_id, x.title AS x_title, type(b) AS behaviour, br.id AS via_id,
       br.name AS via_name, i.title AS i_title
LIMIT $limit
""",
    # (u)-[behaviour]->(x)<-[behaviour]-(other user)-[behaviour]->(i): length 3
    "co_purchase": """
MATCH (i:Item {id: $item_id})<-[:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]-(v:User)
WHERE v.id <> $user_id
WITH i, collect(DISTINCT v.id) AS others
MATCH (u:User {id: $user_id})-[b:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(x:Item)
      <-[:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]-(v:User)
WHERE v.id IN others AND x.id <> $item_id
WITH i, x, type(b) AS behaviour, count(DISTINCT v) AS support
RETURN x.id AS x_id, x.title AS x_title, behaviour, support, i.title AS i_title
ORDER BY support DESC, x_id
LIMIT $limit
""",
    # (u)-[behaviour]->(x)-[IN_CATEGORY]->(c)<-[IN_CATEGORY]-(i): length 3
    "same_category": """
MATCH (i:Item {id: $item_id})-[:IN_CATEGORY]->(c:Category)
WHERE NOT c.id IN $skip_categories
WITH i, collect(c.id) AS categories
MATCH (u:User {id: $user_id})-[b:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(x:Item)
      -[:IN_CATEGORY]->(c:Category)
WHERE c.id IN categories AND x.id <> $item_id
RETURN DISTINCT x.id AS x_id, x.title AS x_title, type(b) AS behaviour, c.id AS via_id,
       c.name AS via_name, i.title AS i_title
LIMIT $limit
""",
    # (u)-[behaviour]->(x)-[IN_CATEGORY]->(c)-[SUBCATEGORY_OF]->(p)<-[IN_CATEGORY]-(i): length 4
    "parent_category": """
MATCH (i:Item {id: $item_id})-[:IN_CATEGORY]->(p:Category)
WHERE NOT p.id IN $skip_categories
WITH i, collect(p.id) AS parents
MATCH (u:User {id: $user_id})-[b:VIEWED|CARTED|FAVORITED|PURCHASED|REVIEWED]->(x:Item)
      -[:IN_CATEGORY]->(c:Category)-[:SUBCATEGORY_OF]->(p:Category)
WHERE p.id IN parents AND x.id <> $item_id
RETURN DISTINCT x.id AS x_id, x.title AS x_title, type(b) AS behaviour, c.id AS sub_id,
       c.name AS sub_name, p.id AS via_id, p.name AS via_name, i.title AS i_title
LIMIT $limit
""",
}

# --- dashboard (issue 6) ---------------------------------------------------------------------
# Read-only statements behind the dashboard pages (called through graph/views.py). Relationship
# types are spelled out in the patterns from the fixed tuples above (the embedded server plans
# `-[r:A|B]-` far better than `-[r]-` filtered by `type(r) IN [...]`).

_DASH_BEHAVIOUR: LiteralString = "|".join(BEHAVIOUR_TYPES)
_DASH_ITEM_LINKS: LiteralString = "|".join(ITEM_RELATION_TYPES + ("SIMILAR_TO",))

DASH_FIND_USERS: LiteralString = """
MATCH (u:User) WHERE u.id STARTS WITH $prefix
RETURN u.id AS id ORDER BY id LIMIT $limit
"""

DASH_FIND_USERS_CASELESS: LiteralString = """
MATCH (u:User) WHERE toLower(u.id) STARTS WITH $prefix
RETURN u.id AS id ORDER BY id LIMIT $limit
"""

DASH_SAMPLE_RECOMMENDED_USERS: LiteralString = """
MATCH (u:User)-[:RECOMMENDED]->(:Item)
WITH DISTINCT u LIMIT $limit
RETURN u.id AS id ORDER BY id
"""

DASH_SAMPLE_USERS: LiteralString = "MATCH (u:User) WITH u LIMIT $limit RETURN u.id AS id ORDER BY id"

DASH_USER_EDGE_COUNTS: LiteralString = """
MATCH (u:User {id: $id})
OPTIONAL MATCH (u)-[r]->(:Item)
RETURN u.id AS id, type(r) AS rel, count(r) AS n
"""

DASH_USER_HISTORY: LiteralString = (
    "MATCH (u:User {id: $id})-[r:" + _DASH_BEHAVIOUR + "]->(i:Item) "
    "OPTIONAL MATCH (i)-[:HAS_BRAND]->(b:Brand) "
    "RETURN type(r) AS behaviour, i.id AS item_id, i.title AS title, b.name AS brand, "
    "i.price AS price, r.count AS count, r.first_ts AS first_ts, r.last_ts AS last_ts, "
    "r.rating AS rating, r.split AS split "
    "ORDER BY behaviour, last_ts DESC, item_id LIMIT $limit"
)

DASH_USER_RECOMMENDATIONS: LiteralString = """
MATCH (u:User {id: $id})-[r:RECOMMENDED]->(i:Item)
OPTIONAL MATCH (i)-[:HAS_BRAND]->(b:Brand)
RETURN r.run_id AS run_id, r.model AS model, r.rank AS rank, r.score AS score,
       i.id AS item_id, i.title AS title, b.name AS brand, i.price AS price,
       r.created_at AS created_at, r.list_size AS list_size
ORDER BY run_id, rank
LIMIT $limit
"""

DASH_FIND_ITEMS: LiteralString = """
MATCH (i:Item)
WHERE i.id STARTS WITH $prefix OR toLower(i.title) CONTAINS $text
RETURN i.id AS id, i.title AS title ORDER BY id LIMIT $limit
"""

DASH_ITEM: LiteralString = """
MATCH (i:Item {id: $id})
OPTIONAL MATCH (i)-[:HAS_BRAND]->(b:Brand)
RETURN i.id AS id, i.title AS title, i.price AS price, b.id AS brand_id, b.name AS brand
"""

DASH_ITEM_CATEGORIES: LiteralString = """
MATCH (i:Item {id: $id})-[:IN_CATEGORY]->(c:Category)
OPTIONAL MATCH (c)-[:SUBCATEGORY_OF]->(p:Category)
RETURN c.id AS id, c.name AS name, collect(p.id) AS parents
"""

DASH_ITEM_RELATED: LiteralString = (
    "MATCH (i:Item {id: $id})-[r:" + _DASH_ITEM_LINKS + "]-(j:Item) "
    "OPTIONAL MATCH (j)-[:HAS_BRAND]->(b:Brand) "
    "RETURN type(r) AS relation, startNode(r).id = $id AS outgoing, r.score AS score, "
    "r.rank AS rank, j.id AS item_id, j.title AS title, b.name AS brand "
    "LIMIT $limit"
)

DASH_ITEM_USERS: LiteralString = (
    "MATCH (i:Item {id: $id})<-[r:" + _DASH_BEHAVIOUR + "]-(u:User) "
    "RETURN u.id AS user_id, type(r) AS behaviour, r.count AS count, r.last_ts AS last_ts, "
    "r.rating AS rating, r.split AS split "
    "ORDER BY last_ts DESC, user_id LIMIT $limit"
)

DASH_ITEM_EDGE_COUNTS: LiteralString = (
    "MATCH (i:Item {id: $id})<-[r:" + _DASH_BEHAVIOUR + "|RECOMMENDED]-(:User) "
    "RETURN type(r) AS rel, count(r) AS n"
)

DASH_ITEM_ALSO_INTERACTED: LiteralString = (
    "MATCH (i:Item {id: $id})<-[:" + _DASH_BEHAVIOUR + "]-(u:User)-[:" + _DASH_BEHAVIOUR
    + "]->(j:Item) WHERE j.id <> $id "
    "WITH j, count(DISTINCT u) AS users ORDER BY users DESC, j.id LIMIT $limit "
    "OPTIONAL MATCH (j)-[:HAS_BRAND]->(b:Brand) "
    "RETURN j.id AS item_id, j.title AS title, b.name AS brand, users"
)

DASH_TOP_CATEGORIES: LiteralString = """
MATCH (i:Item)-[:IN_CATEGORY]->(c:Category)
WITH c, count(i) AS items
ORDER BY items DESC, c.name
LIMIT $limit
RETURN c.name AS name, items
"""

DASH_TOP_BRANDS: LiteralString = """
MATCH (i:Item)-[:HAS_BRAND]->(b:Brand)
WITH b, count(i) AS items
ORDER BY items DESC, b.name
LIMIT $limit
RETURN b.name AS name, items
"""

DASH_RECOMMENDED_ITEM_COUNTS: LiteralString = """
MATCH (:User)-[r:RECOMMENDED]->(i:Item)
WHERE r.run_id = $run_id AND r.rank <= $k
RETURN i.id AS item_id, count(r) AS n
"""

DASH_RECOMMENDATION_RUNS: LiteralString = """
MATCH (:User)-[r:RECOMMENDED]->(:Item)
WITH r LIMIT $sample
RETURN DISTINCT r.run_id AS run_id, r.model AS model
"""

# --- search (issue 5) ---------------------------------------------------------------------
# Interactions per item, behaviour type and split label: search.popularity keeps the target
# relation's non-test ones (the popularity prior of search without a trained run).

# A few items' text, by id: search compares them with its cached catalogue (a reset and a
# reload behind a cache's back are noticed without reading the whole catalogue again).
SEARCH_ITEM_SAMPLE: LiteralString = """
MATCH (i:Item) WHERE i.id IN $ids
OPTIONAL MATCH (i)-[:HAS_BRAND]->(b:Brand)
RETURN i.id AS id, i.title AS title, b.name AS brand
"""

ITEM_POPULARITY: dict[str, LiteralString] = {
    rel: "MATCH (:User)-[e:" + rel + "]->(i:Item) RETURN i.id AS id, e.split AS split, "
         "count(*) AS n"
    for rel in BEHAVIOUR_TYPES
}


# --- console examples (shown in the dashboard's Cypher console; linted like the rest) ---

# the console's hint when the query box is empty
CONSOLE_FIRST_QUERY: LiteralString = "MATCH (u:User) RETURN u.id LIMIT 10"
# The console's own running statement, found by the random tag it ends with (a comment), and its
# termination at the time limit (the embedded server ignores transaction timeouts).
CONSOLE_TRANSACTIONS: LiteralString = (
    "SHOW TRANSACTIONS YIELD transactionId, currentQuery "
    "WHERE currentQuery CONTAINS $tag RETURN transactionId")
TERMINATE_TRANSACTIONS: LiteralString = "TERMINATE TRANSACTIONS $ids"
CONSOLE_EXAMPLES: dict[str, LiteralString] = {
    "A user's recommendations": (
        "MATCH (u:User)-[r:RECOMMENDED]->(i:Item)\n"
        "WITH u, r, i LIMIT 10\n"
        "RETURN u.id AS user, r.rank AS rank, r.score AS score, i.title AS item"),
    "Largest categories": (
        "MATCH (i:Item)-[:IN_CATEGORY]->(c:Category)\n"
        "RETURN c.name AS category, count(i) AS items\n"
        "ORDER BY items DESC LIMIT 10"),
    "Items bought together": (
        "MATCH (a:Item)-[:BOUGHT_TOGETHER]->(b:Item)\n"
        "RETURN a.title AS item, b.title AS bought_with LIMIT 20"),
    "A brand's best sellers": (
        "MATCH (b:Brand)<-[:HAS_BRAND]-(i:Item)<-[r:REVIEWED|PURCHASED]-(:User)\n"
        "WITH b, i, count(r) AS n ORDER BY n DESC LIMIT 10\n"
        "RETURN b.name AS brand, i.title AS item, n"),
    "Labels in the graph": "CALL db.labels() YIELD label RETURN label",
}
