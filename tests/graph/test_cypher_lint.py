"""Dialect discipline: every Cypher statement of kgrec passes Neo4j's own offline Cypher 5 linter.

Needs Node.js and the pinned linter package: `npm ci --prefix tools/cypher-lint` (done by
scripts/install.sh). On a machine without Node at all the linter tests are skipped, saying so;
with Node but without the package they fail with that instruction.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import pytest

from graph import cypherlint
from graph.cypherlint import (
    CypherLintUnavailable,
    LintResult,
    collect_statements,
    recipes_from_markdown,
)

DOCS_CYPHER = cypherlint.REPO_ROOT / "docs" / "cypher.md"


def _lint(statements: dict[str, str]) -> dict[str, LintResult]:
    try:
        return cypherlint.lint(statements)
    except CypherLintUnavailable as exc:
        reason = str(exc)
    # outside the except block, so the failure shows the instruction, not a chained traceback
    if cypherlint.find_node() is None:
        pytest.skip(reason)
    pytest.fail(reason, pytrace=False)


def _check(results: dict[str, LintResult], *, single_statement: bool) -> None:
    """Fail listing every error of every statement; report warnings without failing."""
    problems = []
    for r in results.values():
        if single_statement and r.statements != 1:
            problems.append(
                f"{r.name}:\n  must hold exactly one Cypher statement (found {r.statements}); "
                "the driver runs one statement per call"
            )
        if r.errors:
            problems.append(r.report(warnings=False))
    noisy = [r.report() for r in results.values() if r.warnings]
    if noisy:
        text = "Cypher linter warnings (deprecations etc.):\n" + "\n".join(noisy)
        print(text)
        warnings.warn(text, UserWarning, stacklevel=2)
    if problems:
        pytest.fail(
            f"{len(problems)} of {len(results)} Cypher statements fail Neo4j's Cypher 5 linter:\n"
            + "\n".join(problems),
            pytrace=False,
        )


# --- the real statements --------------------------------------------------------------------


def test_every_statement_of_graph_queries_passes_the_linter() -> None:
    from graph import queries

    statements = collect_statements(queries)
    assert statements, "collect_statements found no Cypher statement in graph.queries"
    _check(_lint(statements), single_statement=True)


def test_cypher_recipes_in_docs_pass_the_linter() -> None:
    if not DOCS_CYPHER.exists():
        pytest.skip(f"{DOCS_CYPHER.relative_to(cypherlint.REPO_ROOT)} does not exist (yet)")
    recipes = recipes_from_markdown(DOCS_CYPHER)
    assert recipes, f"{DOCS_CYPHER} has no ```cypher code block"
    _check(_lint(recipes), single_statement=False)


# --- the linter is not vacuous --------------------------------------------------------------


def test_linter_reports_errors_and_accepts_valid_cypher() -> None:
    results = _lint(
        {
            "valid": "MATCH (n:User {id: $id}) RETURN n.id",
            "syntax_error": "MATCH (n:User {id: $id) RETURN n",
            "apoc_procedure": "CALL apoc.create.node(['User'], {id: $id}) YIELD node RETURN node",
            "gds_function": "RETURN gds.similarity.cosine([1.0], [1.0]) AS s",
            "unbound_variable": "MATCH (n:User) RETURN m",
            "deprecated_id": "MATCH (n:User) RETURN id(n) AS i",
            "two_statements": "RETURN 1 AS a; RETURN 2 AS b",
        }
    )
    valid = results["valid"]
    assert valid.errors == [] and valid.warnings == [], valid.report()
    assert valid.statements == 1
    for name in ("syntax_error", "apoc_procedure", "gds_function", "unbound_variable"):
        assert results[name].errors, f"{name} was not reported as an error"
    assert any("apoc.create.node" in d.message for d in results["apoc_procedure"].errors)
    assert any("gds.similarity.cosine" in d.message for d in results["gds_function"].errors)
    assert any("Invalid input" in d.message for d in results["syntax_error"].errors)
    # deprecations are warnings, not errors
    assert not results["deprecated_id"].errors
    assert any(d.deprecated or "deprecated" in d.message for d in results["deprecated_id"].warnings)
    assert results["two_statements"].statements == 2
    # undeclared $parameters are not reported (we always pass values as parameters)
    assert not any("Parameter" in d.message for r in results.values() for d in r.errors)


def test_large_input_and_output_go_through_the_pipes() -> None:
    """~1 MB in, >64 KB out (more than a pipe buffer either way), results in input order."""
    padded = "UNWIND $rows AS r MERGE (u:User {id: r.id})\n" + "// padding padding padding\n" * 4000
    # each error message repeats the unknown function's 10k-character name: ~100 KB of output
    long_errors = "RETURN " + ", ".join(f"apoc.f{i}_{'x' * 10_000}() AS c{i}" for i in range(10))
    big = {f"PADDED_{i}": padded for i in range(8)} | {"LONG_ERRORS": long_errors}
    results = _lint(big)
    assert list(results) == list(big)
    assert all(results[f"PADDED_{i}"].ok for i in range(8))
    errors = results["LONG_ERRORS"].errors
    assert len(errors) == 10 and all(len(d.message) > 10_000 for d in errors)


# --- collection (pure Python, no Node needed) -----------------------------------------------


def test_collect_statements_takes_upper_case_strings_dicts_and_statement_tuples() -> None:
    mod = ModuleType("fake_queries")
    mod.PING = "RETURN 1 AS ok"
    mod.COUNT = {"User": "MATCH (n:User) RETURN count(n) AS n"}
    mod.SCHEMA = ("CREATE CONSTRAINT a IF NOT EXISTS FOR (n:A) REQUIRE n.id IS UNIQUE",)
    mod.NODE_LABELS = ("User", "Item")  # vocabulary, not statements
    mod.MIXED = {"a": "RETURN 1", "b": 2}  # not all str
    mod.lower_case = "RETURN 2"
    mod._PRIVATE = "RETURN 3"
    mod.NUMBER = 3
    assert collect_statements(mod) == {
        "PING": "RETURN 1 AS ok",
        "COUNT[User]": "MATCH (n:User) RETURN count(n) AS n",
        "SCHEMA[0]": "CREATE CONSTRAINT a IF NOT EXISTS FOR (n:A) REQUIRE n.id IS UNIQUE",
    }


def test_recipes_from_markdown(tmp_path: Path) -> None:
    md = tmp_path / "cypher.md"
    md.write_text(
        "Intro\n\n```cypher\nRETURN 0\n```\n"
        "# Recipes\n## Top items ##\n\n```cypher\nMATCH (i:Item)\nRETURN i.id\n```\n\n"
        "```python\nx = 1\n```\n\n~~~Cypher\nRETURN 2\n~~~\n"
        "## Paths\n````cypher\n```\n# not a heading\n````\n\n```\n# also not a heading\n```\n"
        "```cypher title=\"x\"\nRETURN 3\n```\n",
        encoding="utf-8",
    )
    assert recipes_from_markdown(md) == {
        "cypher.md": "RETURN 0\n",
        "Top items": "MATCH (i:Item)\nRETURN i.id\n",
        "Top items [2]": "RETURN 2\n",
        "Paths": "```\n# not a heading\n",
        "Paths [2]": "RETURN 3\n",
    }
