#!/usr/bin/env node
// Offline Neo4j Cypher 5 linter for kgrec (see graph/cypherlint.py and ARCHITECTURE.md,
// "Dialect discipline").
//
// stdin : JSON array of {"name": string, "query": string}
// stdout: JSON array of {"name", "statements": n, "errors": [diag], "warnings": [diag]} in input
//         order, n being the number of non-empty ';'-separated statements in the query, and
//         diag = {message, severity, line, column, endLine, endColumn, offset, endOffset, tags}
//         (line/column are 1-based; offsets are 0-based character offsets into the query).
// Exit 0 whenever linting ran (also when statements have errors: the Python side decides);
// non-zero only when this script itself fails (bad input, missing package, crash).
//
// API facts for @neo4j-cypher/language-support@2.0.0-next.38 (checked in node_modules):
// - root ESM exports `lintCypherQuery(query, dbSchema, {consoleCommandsEnabled})`, returning
//   `{diagnostics: SyntaxDiagnostic[], symbolTables}`; a SyntaxDiagnostic is an LSP Diagnostic
//   (`range` 0-based, `severity` 1 = Error, 2 = Warning, 3 = Information, 4 = Hint, optional
//   `tags` with 2 = Deprecated) plus `offsets: {start, end}`.
// - `isNotParamError(diag)` is exported too: false exactly for "Parameter $x is not defined."
//   diagnostics. The linter reports every `$param` that is not in `dbSchema.parameters` as an
//   error; kgrec passes all values as $parameters at run time, so those are not defects.
// - `testData.mockSchema.functions` / `.procedures` are *scoped* registries:
//   `{'CYPHER 5': {name: Neo4jFunction|Neo4jProcedure}, 'CYPHER 25': {...}}`. With those
//   registries present, unknown functions/procedures are errors.
// - `parseStatementsStrs(query)` splits a query into its ';'-separated statements (empty ones
//   dropped); the driver runs exactly one statement per call, so callers check the count.
// - The package declares engines.node >= 24.11.1 but runs correctly on node 20 (verified).
import {
  lintCypherQuery,
  isNotParamError,
  parseStatementsStrs,
  testData,
} from '@neo4j-cypher/language-support';

const SEVERITY_ERROR = 1; // LSP DiagnosticSeverity.Error (2 = Warning, 3 = Info, 4 = Hint)

// No APOC, no GDS: the product must run on a plain Neo4j (and on the embedded server), so
// those plugin entries are removed from the registries and calling them becomes an error.
const isPluginName = (name) => name.startsWith('apoc.') || name.startsWith('gds.');

function withoutPlugins(scopedRegistry) {
  const out = {};
  for (const [version, registry] of Object.entries(scopedRegistry ?? {})) {
    out[version] = Object.fromEntries(
      Object.entries(registry).filter(([name]) => !isPluginName(name)),
    );
  }
  return out;
}

const functions = withoutPlugins(testData.mockSchema.functions);
const procedures = withoutPlugins(testData.mockSchema.procedures);
const dbSchema = { defaultLanguage: 'CYPHER 5', functions, procedures };

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function toDiag(d) {
  return {
    message: d.message,
    severity: d.severity,
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
    endLine: d.range.end.line + 1,
    endColumn: d.range.end.character + 1,
    offset: d.offsets?.start ?? null,
    endOffset: d.offsets?.end ?? null,
    tags: d.tags ?? [],
  };
}

function lintOne({ name, query }) {
  const { diagnostics } = lintCypherQuery(query, dbSchema, {
    consoleCommandsEnabled: false,
  });
  const errors = [];
  const warnings = [];
  for (const d of diagnostics.filter(isNotParamError)) {
    // A missing severity defaults to Error in LSP; Information/Hint are reported as warnings.
    const sev = d.severity ?? SEVERITY_ERROR;
    (sev === SEVERITY_ERROR ? errors : warnings).push(toDiag(d));
  }
  return { name, statements: parseStatementsStrs(query).length, errors, warnings };
}

async function main() {
  const input = JSON.parse(await readStdin());
  if (!Array.isArray(input)) {
    throw new TypeError('stdin must be a JSON array of {"name", "query"}');
  }
  const items = input.map((item, i) => {
    if (typeof item?.query !== 'string') {
      throw new TypeError(`item ${i}: "query" must be a string`);
    }
    return { name: String(item.name ?? i), query: item.query };
  });
  const results = items.map(lintOne);
  // A single write on a possibly piped stdout: wait for it to flush before exiting.
  await new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(results), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

main().catch((err) => {
  process.stderr.write(`cypher-lint: ${err?.stack ?? err}\n`);
  process.exit(2);
});
