"""Lint Cypher with Neo4j's own offline Cypher 5 linter (dialect discipline, see ARCHITECTURE.md).

The linter is the npm package `@neo4j-cypher/language-support` (pinned in
`tools/cypher-lint/package-lock.json`), driven by `tools/cypher-lint/lint.mjs` under Node.js.
Install it once with::

    npm ci --prefix tools/cypher-lint

What it checks: Cypher 5 syntax and semantics (unbound variables, removed syntax, ...),
deprecations (as warnings), and that every function and procedure exists in a plain Neo4j (APOC
and GDS are removed from its registries, so calling them is an error). Undeclared-`$parameter`
diagnostics are dropped: kgrec passes every value as a parameter at run time.

This is a development/CI tool: nothing at run time depends on Node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from core.errors import KgrecError

REPO_ROOT = Path(__file__).resolve().parent.parent
LINT_DIR = REPO_ROOT / "tools" / "cypher-lint"
LINT_SCRIPT = LINT_DIR / "lint.mjs"
LINT_PACKAGE = LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
INSTALL_HINT = "run: npm ci --prefix tools/cypher-lint"

_UPPER_CASE = re.compile(r"[A-Z][A-Z0-9_]*")


class CypherLintUnavailable(KgrecError):
    """Node.js or the linter package is not installed."""


class CypherLintFailed(KgrecError):
    """The linter itself failed (not: a statement has errors)."""


@dataclass(frozen=True)
class Diagnostic:
    """One linter finding. `line`/`column` are 1-based, relative to the statement text."""

    message: str
    severity: int  # LSP DiagnosticSeverity: 1 error, 2 warning, 3 information, 4 hint
    line: int
    column: int
    end_line: int
    end_column: int
    offset: int | None = None
    end_offset: int | None = None
    deprecated: bool = False  # LSP DiagnosticTag.Deprecated (2)

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class LintResult:
    name: str
    query: str
    statements: int  # non-empty ';'-separated statements in `query`
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def report(self, *, warnings: bool = True) -> str:
        """A readable multi-line report of this statement's findings (empty when clean)."""
        lines = [f"  error {d}" for d in self.errors]
        if warnings:
            lines += [f"  warning {d}" for d in self.warnings]
        return "\n".join([f"{self.name}:", *lines]) if lines else ""


def _diagnostic(d: dict) -> Diagnostic:
    return Diagnostic(
        message=d["message"],
        severity=d["severity"],
        line=d["line"],
        column=d["column"],
        end_line=d["endLine"],
        end_column=d["endColumn"],
        offset=d.get("offset"),
        end_offset=d.get("endOffset"),
        deprecated=2 in d.get("tags", ()),
    )


def find_node() -> str | None:
    """The Node.js executable (`node` on PATH, or $KGREC_NODE), or None."""
    return shutil.which(os.environ.get("KGREC_NODE", "node"))


def _node_executable() -> str:
    node = find_node()
    if node is None:
        raise CypherLintUnavailable(
            "Node.js (`node`) is not on PATH: install Node.js >= 20, then " + INSTALL_HINT
        )
    if not LINT_PACKAGE.is_dir():
        raise CypherLintUnavailable(
            f"the Cypher linter package is not installed in {LINT_DIR / 'node_modules'}: "
            + INSTALL_HINT
        )
    return node


def lint(statements: dict[str, str], *, timeout: float = 600.0) -> dict[str, LintResult]:
    """Lint every statement (name -> Cypher text); results keyed like the input.

    One Node process lints them all (its start-up, ~1-2 s, dominates for small inputs).
    Raises CypherLintUnavailable when Node or the package is missing, CypherLintFailed when
    the linter crashes; findings in the statements are in the results, never raised.
    """
    if not statements:
        return {}
    node = _node_executable()
    payload = json.dumps([{"name": n, "query": q} for n, q in statements.items()])
    try:
        proc = subprocess.run(
            [node, str(LINT_SCRIPT)],
            input=payload.encode("utf-8"),
            capture_output=True,
            cwd=LINT_DIR,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CypherLintFailed(f"the Cypher linter did not finish within {timeout:.0f} s") from exc
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        hint = f" ({INSTALL_HINT})" if "ERR_MODULE_NOT_FOUND" in stderr else ""
        raise CypherLintFailed(
            f"the Cypher linter exited with {proc.returncode}{hint}:\n{stderr[-4000:]}"
        )
    try:
        raw = json.loads(proc.stdout.decode("utf-8"))
    except ValueError as exc:
        raise CypherLintFailed(f"the Cypher linter wrote no valid JSON:\n{stderr[-4000:]}") from exc
    if len(raw) != len(statements):
        raise CypherLintFailed(
            f"the Cypher linter returned {len(raw)} results for {len(statements)} statements"
        )
    results: dict[str, LintResult] = {}
    # The script answers in input order; names are matched positionally (they are unique keys).
    for (name, query), r in zip(statements.items(), raw):
        results[name] = LintResult(
            name=name,
            query=query,
            statements=r["statements"],
            errors=[_diagnostic(d) for d in r["errors"]],
            warnings=[_diagnostic(d) for d in r["warnings"]],
        )
    return results


def collect_statements(module: ModuleType) -> dict[str, str]:
    """Every Cypher statement defined at a module's top level, by name.

    - an UPPER_CASE `str` constant -> `NAME`;
    - an UPPER_CASE dict whose values are all `str` -> `NAME[key]` for each entry;
    - an UPPER_CASE tuple/list whose items are all `str` and all contain whitespace (e.g. a tuple
      of DDL statements) -> `NAME[i]`. Tuples of bare names such as `NODE_LABELS = ("User",
      "Item")` are schema vocabulary, not statements, and are skipped (a Cypher statement always
      has more than one token).
    """
    found: dict[str, str] = {}
    for name, value in vars(module).items():
        if not _UPPER_CASE.fullmatch(name):
            continue
        if isinstance(value, str):
            found[name] = value
        elif isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
            for key, v in value.items():
                found[f"{name}[{key}]"] = v
        elif (
            isinstance(value, (tuple, list))
            and value
            and all(isinstance(v, str) and re.search(r"\s", v.strip()) for v in value)
        ):
            for i, v in enumerate(value):
                found[f"{name}[{i}]"] = v
    return found


_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")


def recipes_from_markdown(path: str | os.PathLike[str]) -> dict[str, str]:
    """Every fenced ```cypher block of a Markdown file, named by its nearest preceding heading.

    A second block under the same heading is named `Heading [2]`, and so on; blocks before any
    heading are named after the file. The info string is matched case-insensitively on its first
    word (```cypher, ~~~Cypher, ```cypher title=... all count).
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    recipes: dict[str, str] = {}
    counts: dict[str, int] = {}
    heading = path.name
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence:
            indent, marker, lang = len(fence.group(1)), fence.group(2), fence.group(3)
            close = re.compile(r" {0,3}" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}[ \t]*$")
            body: list[str] = []
            i += 1
            while i < len(lines) and not close.match(lines[i]):
                # CommonMark: strip up to the opening fence's indentation from content lines
                body.append(re.sub(rf"^ {{0,{indent}}}", "", lines[i]) if indent else lines[i])
                i += 1
            i += 1  # the closing fence (or end of file)
            if lang.lower() == "cypher":
                counts[heading] = counts.get(heading, 0) + 1
                name = heading if counts[heading] == 1 else f"{heading} [{counts[heading]}]"
                recipes[name] = "\n".join(body) + "\n"
            continue
        h = _HEADING.match(line)
        if h:
            heading = (h.group(2) or "").strip() or heading
        i += 1
    return recipes
