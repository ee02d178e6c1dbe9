// Parses PL/SQL and SQL*Plus script files with the grammars-v4 PlSql ANTLR grammar
// (npm: @griffithswaite/ts-plsql-parser). Run by tests/plsql.rs:
//
//   node tests/plsql/parse.mjs FILE...
//
// Prints one JSON object per file on its own line:
//   {"file": ..., "ok": true|false, "errors": ["line:col: message", ...],
//    "skipped": ["3: DEFINE x = y", ...], "units": ["create_package dco", ...]}
// and exits 1 when any file has a syntax error (2 on a usage error).
//
// How a file is cut before parsing, exactly as SQL*Plus reads a script, line by line:
// - a PL/SQL unit (CREATE [OR REPLACE] PACKAGE / PACKAGE BODY / PROCEDURE / FUNCTION / TYPE /
//   TRIGGER / LIBRARY, DECLARE, BEGIN) runs up to its "/" line;
// - another SQL statement runs up to the line that ends with ";";
// - between statements, a line starting with SET, PROMPT, WHENEVER, SHOW, EXIT or @ is one
//   SQL*Plus command.
// Each statement and each SQL*Plus command is parsed on its own, with the grammar's start rule
// (sql_script); its text is not changed (empty lines are put before it so that line numbers
// stay those of the file). The grammar's sql_script would otherwise want a ";" between a
// SQL*Plus command and the statement after it, which SQL*Plus does not.
// The only lines not given to the grammar are the SQL*Plus variable commands DEFINE and
// UNDEFINE, which it does not know; they are listed in "skipped". Comments and blank lines
// between statements are not parsed either.

// The runtime is antlr4 4.13.2 (package.json overrides the parser package's peer pin of
// 4.13.0): same grammar, same parse trees, but 4.13.0's prediction code makes the first parse of
// this grammar about five times slower.

import fs from "node:fs";
import antlr4, { BailErrorStrategy, PredictionMode } from "antlr4";
import { PlSqlLexer, PlSqlParser } from "@griffithswaite/ts-plsql-parser";

const SQLPLUS_COMMAND = /^\s*(SET|PROMPT|WHENEVER|SHOW|EXIT|@)(\s|@|$)/i;
const SQLPLUS_SKIPPED = /^\s*(DEFINE|UNDEFINE)(\s|$)/i;
const PLSQL_UNIT =
  /^\s*(CREATE\s+(OR\s+REPLACE\s+)?((NON)?EDITIONABLE\s+)?(PACKAGE|PROCEDURE|FUNCTION|TYPE|TRIGGER|LIBRARY)\b|DECLARE\b|BEGIN\b)/i;
const SLASH = /^\s*\/\s*$/;

// Cuts a script into chunks: {line (1-based first line), text, kind}.
function chunks(text) {
  const lines = text.split("\n");
  const out = [];
  const skipped = [];
  let cur = null; // {line, lines: [], plsql}
  const close = () => {
    if (cur) out.push({ line: cur.line, text: cur.lines.join("\n"), plsql: cur.plsql });
    cur = null;
  };
  lines.forEach((line, i) => {
    const n = i + 1;
    if (cur) {
      cur.lines.push(line);
      if (cur.plsql ? SLASH.test(line) : /;\s*(--.*)?$/.test(line) || SLASH.test(line)) close();
      return;
    }
    if (/^\s*$/.test(line) || /^\s*--/.test(line)) return;
    if (SQLPLUS_SKIPPED.test(line)) {
      skipped.push(`${n}: ${line.trim()}`);
      return;
    }
    if (SQLPLUS_COMMAND.test(line)) {
      out.push({ line: n, text: line, plsql: false });
      return;
    }
    cur = { line: n, lines: [line], plsql: PLSQL_UNIT.test(line) };
    if (!cur.plsql && /;\s*(--.*)?$/.test(line)) close();
  });
  if (cur) {
    // A statement without its end: parse it anyway (the grammar reports what is missing),
    // and say so.
    out.push({ line: cur.line, text: cur.lines.join("\n"), plsql: cur.plsql, unterminated: true });
  }
  return { chunks: out, skipped };
}

class Collect {
  constructor() {
    this.errors = [];
  }
  syntaxError(_recognizer, _symbol, line, column, msg) {
    if (msg.length > 160) msg = msg.slice(0, 160) + "...";
    this.errors.push(`${line}:${column + 1}: ${msg}`);
  }
  reportAmbiguity() {}
  reportAttemptingFullContext() {}
  reportContextSensitivity() {}
}

function makeParser(text, listener) {
  const lexer = new PlSqlLexer(new antlr4.CharStream(text));
  lexer.removeErrorListeners();
  lexer.addErrorListener(listener);
  const parser = new PlSqlParser(new antlr4.CommonTokenStream(lexer));
  parser.removeErrorListeners();
  parser.addErrorListener(listener);
  return parser;
}

// The usual two-stage strategy: SLL prediction with bail-out is fast and, when it succeeds,
// the parse is correct; on failure parse again with full LL for the true errors.
function parse(text) {
  const fast = new Collect();
  const p1 = makeParser(text, fast);
  p1._interp.predictionMode = PredictionMode.SLL;
  p1._errHandler = new BailErrorStrategy();
  try {
    const tree = p1.sql_script();
    if (fast.errors.length === 0) {
      return { tree, errors: [] };
    }
  } catch (_e) {
    // fall through to the full parse
  }
  const full = new Collect();
  const p2 = makeParser(text, full);
  const tree = p2.sql_script();
  return { tree, errors: full.errors };
}

function ruleName(ctx) {
  return ctx.constructor.name.replace(/Context$/, "").toLowerCase();
}

function words(node, out, max) {
  if (out.length >= max) return;
  if (node.symbol) {
    out.push(node.getText());
    return;
  }
  for (const c of node.children || []) {
    words(c, out, max);
    if (out.length >= max) return;
  }
}

// What each top-level statement of a parse tree is: the rule under unit_statement (or
// sql_plus_command) and its first words.
function units(tree) {
  const out = [];
  for (const child of tree.children || []) {
    const kind = ruleName(child);
    if (kind === "unit_statement" && child.children && child.children.length > 0) {
      const inner = child.children[0];
      const w = [];
      words(inner, w, 8);
      out.push(`${ruleName(inner)} ${w.join(" ")}`.trim());
    } else if (kind === "sql_plus_command") {
      const w = [];
      words(child, w, 6);
      out.push(`sql_plus_command ${w.join(" ")}`.trim());
    }
  }
  return out;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node parse.mjs FILE...");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  const { chunks: parts, skipped } = chunks(fs.readFileSync(file, "utf8"));
  const errors = [];
  const found = [];
  for (const c of parts) {
    if (c.unterminated) {
      errors.push(`${c.line}:1: statement not ended (PL/SQL wants a "/" line, SQL a ";")`);
    }
    const { tree, errors: e } = parse("\n".repeat(c.line - 1) + c.text);
    errors.push(...e);
    found.push(...units(tree));
  }
  if (parts.length === 0) errors.push("1:1: nothing to parse");
  if (errors.length > 0) failed = true;
  console.log(JSON.stringify({ file, ok: errors.length === 0, errors, skipped, units: found }));
}
process.exit(failed ? 1 : 0);
