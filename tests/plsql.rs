//! plsql/ checked without an Oracle server.
//!
//! - Every .sql, .pks and .pkb file parses with a real PL/SQL grammar: the grammars-v4 PlSql
//!   ANTLR grammar, as packaged on npm (@griffithswaite/ts-plsql-parser), driven by
//!   tests/plsql/parse.mjs under Node.js. Broken copies of the same files must fail to parse,
//!   so a parser that accepted anything would fail this test too.
//! - Every `LANGUAGE C` call specification matches, parameter by parameter, the C prototype of
//!   the dco_ext_* function it names in include/dco.h, and every dco_ext_* function of the
//!   header has a call specification.
//! - The package specification's exceptions cover every DCO_E_* code with ORA-(20100 - code),
//!   and both bodies implement every subprogram of the specification.
//! - dco_http's body implements its specification and names nothing of package dco that dco.pks
//!   does not declare, so it runs over either body.
//!
//! Needs Node.js and the parser package: `npm ci --prefix tests/plsql` (.ci/run does it).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every .sql, .pks and .pkb file of plsql/, sorted.
fn plsql_files() -> Vec<PathBuf> {
    let dir = root().join("plsql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("sql" | "pks" | "pkb")
            )
        })
        .collect();
    files.sort();
    for want in [
        "dco.pks",
        "dco_extproc.pkb",
        "dco_utl_tcp.pkb",
        "dco_pdu.pks",
        "dco_pdu.pkb",
        "dco_http.pks",
        "dco_http.pkb",
        "install_extproc.sql",
        "install_utl_tcp.sql",
        "uninstall.sql",
        "examples.sql",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(want)),
            "plsql/{want} is missing"
        );
    }
    files
}

// ------------------------------------------------------------------------------------------
// The grammar, through Node.js

/// What parse.mjs says of one file.
#[derive(Debug, Clone)]
struct Parsed {
    ok: bool,
    errors: Vec<String>,
    skipped: Vec<String>,
    units: Vec<String>,
}

/// A broken copy of a real file: where it was broken and how.
struct Broken {
    path: PathBuf,
    line: usize,
    what: &'static str,
}

struct ParseRun {
    files: HashMap<PathBuf, Parsed>,
    broken: Vec<Broken>,
}

/// Copies `file` of plsql/ into `dir` with the first `from` replaced by `to`, and notes the line.
fn break_file(dir: &Path, file: &str, from: &str, to: &str, what: &'static str) -> Broken {
    let text = read(&root().join("plsql").join(file));
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("plsql/{file} no longer contains {from:?}: update this test"));
    let line = text[..at].matches('\n').count() + 1;
    let broken = format!("{}{}{}", &text[..at], to, &text[at + from.len()..]);
    let path = dir.join(format!("broken-{}-{file}", line));
    std::fs::write(&path, broken).expect("write broken copy");
    Broken { path, line, what }
}

/// Runs parse.mjs once for every test of this file: over plsql/ and broken copies of it (the
/// grammar takes long to warm up, so two processes share the files rather than one per file).
fn parse_run() -> &'static ParseRun {
    static RUN: OnceLock<ParseRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let script = root().join("tests/plsql/parse.mjs");
        let package = root().join("tests/plsql/node_modules/@griffithswaite/ts-plsql-parser");
        match Command::new("node").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "Node.js is not installed: the PL/SQL grammar test runs the grammars-v4 PlSql \
                 parser under node. Install it (apt-get install nodejs npm), then \
                 `npm ci --prefix tests/plsql` (.ci/run does both)."
            ),
        }
        if !package.join("package.json").exists() {
            // First run on a fresh checkout: install the pinned parser (npm's registry).
            let st = Command::new("npm")
                .args(["ci", "--prefix", "tests/plsql", "--no-audit", "--no-fund"])
                .current_dir(root())
                .status();
            assert!(
                st.is_ok_and(|s| s.success()) && package.join("package.json").exists(),
                "the PL/SQL parser package is not installed in tests/plsql/node_modules and \
                 `npm ci --prefix tests/plsql` failed (it needs npm and the npm registry)"
            );
        }
        let dir = common::TempDir::new("plsql-broken");
        let broken = vec![
            break_file(
                dir.path(),
                "dco.pks",
                "PROCEDURE flush;",
                "PROCEDURE flush",
                "a declaration without its semicolon",
            ),
            break_file(
                dir.path(),
                "dco.pks",
                "PRAGMA EXCEPTION_INIT(timeout, -20102);",
                "PRAGMA EXCEPTION_INIT(timeout -20102);",
                "a missing comma",
            ),
            break_file(
                dir.path(),
                "dco_extproc.pkb",
                "PARAMETERS (CONTEXT, RETURN INT);",
                "PARAMETERS (CONTEXT RETURN INT);",
                "a call specification's parameter list without its comma",
            ),
            break_file(
                dir.path(),
                "dco_extproc.pkb",
                "      got := got + n;\n    END LOOP;",
                "      got := got + n;\n    END;",
                "END instead of END LOOP",
            ),
            break_file(
                dir.path(),
                "dco_pdu.pkb",
                "    IF v < 0 THEN\n      v := v + 4294967296;\n    END IF;",
                "    IF v < 0 THEN\n      v := v + 4294967296;\n",
                "an IF without END IF",
            ),
            break_file(
                dir.path(),
                "examples.sql",
                "DBMS_OUTPUT.PUT_LINE('call_sync: ' || dco_pdu.get_line);",
                "DBMS_OUTPUT.PUT_LINE('call_sync: ' || );",
                "an operator without its operand",
            ),
        ];
        let mut args: Vec<PathBuf> = plsql_files();
        args.extend(broken.iter().map(|b| b.path.clone()));
        // Two node processes, each with about half of the bytes: the parse is CPU-bound and
        // the test machine has two cores.
        let mut by_size: Vec<(u64, PathBuf)> = args
            .iter()
            .map(|p| {
                (
                    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                    p.clone(),
                )
            })
            .collect();
        by_size.sort_by_key(|b| std::cmp::Reverse(b.0));
        let mut halves: [(u64, Vec<PathBuf>); 2] = [(0, Vec::new()), (0, Vec::new())];
        for (len, p) in by_size {
            let h = if halves[0].0 <= halves[1].0 { 0 } else { 1 };
            halves[h].0 += len;
            halves[h].1.push(p);
        }
        let runs: Vec<_> = halves
            .into_iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(_, list)| {
                let child = Command::new("node")
                    .arg(&script)
                    .args(&list)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run node tests/plsql/parse.mjs");
                (list.len(), child)
            })
            .collect();
        let mut files = HashMap::new();
        for (count, child) in runs {
            let out = child.wait_with_output().expect("wait for parse.mjs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut answered = 0;
            let mut any_bad = false;
            for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("parse.mjs printed {line:?}, not JSON: {e}"));
                let list = |k: &str| -> Vec<String> {
                    v[k].as_array()
                        .unwrap_or_else(|| panic!("no {k} in {line}"))
                        .iter()
                        .map(|s| s.as_str().unwrap_or_default().to_string())
                        .collect()
                };
                let parsed = Parsed {
                    ok: v["ok"].as_bool().expect("ok"),
                    errors: list("errors"),
                    skipped: list("skipped"),
                    units: list("units"),
                };
                any_bad |= !parsed.ok;
                answered += 1;
                files.insert(PathBuf::from(v["file"].as_str().expect("file")), parsed);
            }
            assert!(
                answered == count,
                "parse.mjs answered for {answered} of {count} files (exit {:?}); stderr:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.status.code(),
                Some(if any_bad { 1 } else { 0 }),
                "parse.mjs exit status does not match its report; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            files.len(),
            args.len(),
            "a file was answered twice or not at all"
        );
        // The broken copies are parsed: remove them now (a static is never dropped).
        drop(dir);
        ParseRun { files, broken }
    })
}

#[test]
fn every_plsql_file_parses_with_the_plsql_grammar() {
    let run = parse_run();
    let mut failures = Vec::new();
    for f in plsql_files() {
        let p = &run.files[&f];
        if !p.ok {
            failures.push(format!("{}:\n    {}", f.display(), p.errors.join("\n    ")));
        }
        assert!(
            p.skipped.is_empty(),
            "{}: lines not given to the grammar: {:?}",
            f.display(),
            p.skipped
        );
    }
    assert!(
        failures.is_empty(),
        "syntax errors (line:column):\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_parser_sees_what_each_file_creates() {
    let run = parse_run();
    let units = |name: &str| -> Vec<String> {
        run.files[&root().join("plsql").join(name)]
            .units
            .iter()
            .map(|u| u.to_lowercase())
            .collect()
    };
    let has = |name: &str, prefix: &str| {
        let u = units(name);
        assert!(
            u.iter().any(|x| x.starts_with(prefix)),
            "plsql/{name}: no unit starting with {prefix:?} in {u:?}"
        );
    };
    has("dco.pks", "create_package create or replace package dco ");
    has(
        "dco_pdu.pks",
        "create_package create or replace package dco_pdu ",
    );
    has(
        "dco_extproc.pkb",
        "create_package_body create or replace package body dco ",
    );
    has(
        "dco_utl_tcp.pkb",
        "create_package_body create or replace package body dco ",
    );
    has(
        "dco_pdu.pkb",
        "create_package_body create or replace package body dco_pdu ",
    );
    has(
        "dco_http.pks",
        "create_package create or replace package dco_http ",
    );
    has(
        "dco_http.pkb",
        "create_package_body create or replace package body dco_http ",
    );
    has(
        "install_extproc.sql",
        "create_library create or replace library dco_lib as '&&libdco_path'",
    );
    has(
        "install_extproc.sql",
        "sql_plus_command @ @ dco_extproc . pkb",
    );
    has(
        "install_utl_tcp.sql",
        "sql_plus_command @ @ dco_utl_tcp . pkb",
    );
    for install in ["install_extproc.sql", "install_utl_tcp.sql"] {
        has(install, "sql_plus_command @ @ dco_http . pks");
        has(install, "sql_plus_command @ @ dco_http . pkb");
    }
    has("uninstall.sql", "anonymous_block");
    let blocks = units("examples.sql")
        .iter()
        .filter(|u| u.starts_with("anonymous_block"))
        .count();
    assert!(
        blocks >= 9,
        "examples.sql: {blocks} anonymous blocks parsed, want 9"
    );
}

#[test]
fn the_parser_rejects_broken_plsql() {
    let run = parse_run();
    for b in &run.broken {
        let p = &run.files[&b.path];
        assert!(
            !p.ok,
            "{} ({}) at line {} parsed without error",
            b.path.display(),
            b.what,
            b.line
        );
        let first: usize = p.errors[0]
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("error without a line number: {}", p.errors[0]));
        // ANTLR reports an error at the first token it cannot take, which may come a few
        // lines (of comments) after the damage.
        assert!(
            first >= b.line && first <= b.line + 10,
            "{} ({}) broken at line {} but the first error is at line {first}: {:?}",
            b.path.display(),
            b.what,
            b.line,
            p.errors
        );
    }
}

// ------------------------------------------------------------------------------------------
// Call specifications against include/dco.h

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Punct(String),
}

impl Tok {
    fn is(&self, word: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(word))
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self, Tok::Punct(x) if x == p)
    }
    fn text(&self) -> String {
        match self {
            Tok::Word(w) => w.to_uppercase(),
            Tok::Quoted(q) => format!("\"{q}\""),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Punct(p) => p.clone(),
        }
    }
}

/// PL/SQL tokens without comments; each with its line.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                if b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            let start = line;
            let mut s = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == '\'' {
                    if b.get(i + 1) == Some(&'\'') {
                        s.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if b[i] == '\n' {
                    line += 1;
                }
                s.push(b[i]);
                i += 1;
            }
            out.push((Tok::Str(s), start));
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < b.len() && b[i] != '"' {
                s.push(b[i]);
                i += 1;
            }
            i += 1;
            out.push((Tok::Quoted(s), line));
        } else if c.is_alphanumeric() || c == '_' {
            let mut s = String::new();
            while i < b.len() && (b[i].is_alphanumeric() || "_$#".contains(b[i])) {
                s.push(b[i]);
                i += 1;
            }
            out.push((Tok::Word(s), line));
        } else {
            let two: String = b[i..(i + 2).min(b.len())].iter().collect();
            if [":=", "..", "=>", "||", "<>", "!=", "<=", ">="].contains(&two.as_str()) {
                out.push((Tok::Punct(two), line));
                i += 2;
            } else {
                out.push((Tok::Punct(c.to_string()), line));
                i += 1;
            }
        }
    }
    out
}

/// Splits tokens at top-level commas.
fn split_commas(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0;
    for t in toks {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
        } else if t.is_punct(",") && depth == 0 {
            out.push(Vec::new());
            continue;
        }
        out.last_mut().expect("a group").push(t.clone());
    }
    if out.len() == 1 && out[0].is_empty() {
        out.clear();
    }
    out
}

/// Index of the `)` that closes the `(` at `open`.
fn closing(toks: &[(Tok, usize)], open: usize) -> usize {
    let mut depth = 0;
    for (k, (t, _)) in toks.iter().enumerate().skip(open) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    panic!("unbalanced parentheses from token {open}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    In,
    Out,
    InOut,
}

/// A formal parameter of a PL/SQL subprogram.
#[derive(Clone, Debug)]
struct Formal {
    name: String,
    mode: Mode,
    ty: String,
}

/// A subprogram heading: FUNCTION or PROCEDURE, name, parameters, return type.
#[derive(Clone, Debug)]
struct Heading {
    function: bool,
    name: String,
    formals: Vec<Formal>,
    returns: Option<String>,
    line: usize,
    /// Index of the token after the heading (AS, IS or ;).
    end: usize,
}

/// Parses the subprogram heading whose FUNCTION/PROCEDURE keyword is at `at`.
fn heading(toks: &[(Tok, usize)], at: usize) -> Heading {
    let function = toks[at].0.is("FUNCTION");
    let name = match &toks[at + 1].0 {
        Tok::Word(w) => w.to_lowercase(),
        t => panic!("line {}: subprogram name expected, got {t:?}", toks[at].1),
    };
    let mut k = at + 2;
    let mut formals = Vec::new();
    if toks[k].0.is_punct("(") {
        let close = closing(toks, k);
        let inner: Vec<Tok> = toks[k + 1..close].iter().map(|(t, _)| t.clone()).collect();
        for group in split_commas(&inner) {
            let pname = group[0].text().to_lowercase();
            let mut j = 1;
            let mut mode = Mode::In;
            if group.get(j).is_some_and(|t| t.is("IN")) {
                j += 1;
                if group.get(j).is_some_and(|t| t.is("OUT")) {
                    mode = Mode::InOut;
                    j += 1;
                }
            } else if group.get(j).is_some_and(|t| t.is("OUT")) {
                mode = Mode::Out;
                j += 1;
            }
            if group.get(j).is_some_and(|t| t.is("NOCOPY")) {
                j += 1;
            }
            let ty = group
                .get(j)
                .map(|t| t.text())
                .unwrap_or_else(|| panic!("line {}: parameter {pname} has no type", toks[at].1));
            formals.push(Formal {
                name: pname,
                mode,
                ty,
            });
        }
        k = close + 1;
    }
    let mut returns = None;
    if toks[k].0.is("RETURN") {
        returns = Some(toks[k + 1].0.text());
        k += 2;
    }
    Heading {
        function,
        name,
        formals,
        returns,
        line: toks[at].1,
        end: k,
    }
}

/// One item of a PARAMETERS clause.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Context,
    /// name (None for RETURN), property (None for the value itself), external type.
    Param {
        name: Option<String>,
        property: Option<String>,
        ext: String,
    },
}

/// A call specification: the PL/SQL heading and its LANGUAGE C clause.
#[derive(Clone, Debug)]
struct CallSpec {
    file: String,
    heading: Heading,
    library: String,
    c_name: String,
    with_context: bool,
    items: Vec<Item>,
}

/// Every `LANGUAGE C` call specification in `text`.
fn call_specs(file: &str, text: &str) -> Vec<CallSpec> {
    let toks = tokenize(text);
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if !(toks[i].0.is("LANGUAGE") && toks.get(i + 1).is_some_and(|t| t.0.is("C"))) {
            continue;
        }
        // The heading it belongs to: the nearest FUNCTION or PROCEDURE before it.
        let at = (0..i)
            .rev()
            .find(|&k| toks[k].0.is("FUNCTION") || toks[k].0.is("PROCEDURE"))
            .unwrap_or_else(|| panic!("{file}:{}: LANGUAGE C without a heading", toks[i].1));
        let h = heading(&toks, at);
        assert!(
            h.end + 1 == i && (toks[h.end].0.is("AS") || toks[h.end].0.is("IS")),
            "{file}:{}: {} AS LANGUAGE C expected right after the heading",
            h.line,
            h.name
        );
        let mut k = i + 2;
        let (mut library, mut c_name, mut with_context) = (String::new(), String::new(), false);
        let mut items = Vec::new();
        loop {
            let t = &toks[k].0;
            if t.is("LIBRARY") {
                library = toks[k + 1].0.text().to_lowercase();
                k += 2;
            } else if t.is("NAME") {
                c_name = match &toks[k + 1].0 {
                    Tok::Quoted(q) => q.clone(),
                    Tok::Word(w) => w.to_lowercase(),
                    t => panic!("{file}:{}: NAME {t:?}", toks[k].1),
                };
                k += 2;
            } else if t.is("WITH") && toks[k + 1].0.is("CONTEXT") {
                with_context = true;
                k += 2;
            } else if t.is("PARAMETERS") {
                let close = closing(&toks, k + 1);
                let inner: Vec<Tok> = toks[k + 2..close].iter().map(|(t, _)| t.clone()).collect();
                for group in split_commas(&inner) {
                    items.push(parameters_item(file, &h, &group));
                }
                k = close + 1;
            } else if t.is_punct(";") {
                break;
            } else {
                panic!(
                    "{file}:{}: unexpected {t:?} in the call specification of {}",
                    toks[k].1, h.name
                );
            }
        }
        out.push(CallSpec {
            file: file.to_string(),
            heading: h,
            library,
            c_name,
            with_context,
            items,
        });
    }
    out
}

const PROPERTIES: [&str; 7] = [
    "INDICATOR",
    "LENGTH",
    "MAXLEN",
    "CHARSETID",
    "CHARSETFORM",
    "TDO",
    "DURATION",
];

fn parameters_item(file: &str, h: &Heading, group: &[Tok]) -> Item {
    let words: Vec<String> = group.iter().map(|t| t.text()).collect();
    if words == ["CONTEXT"] {
        return Item::Context;
    }
    let (name, rest) = if words[0] == "RETURN" {
        (None, &words[1..])
    } else {
        (Some(words[0].to_lowercase()), &words[1..])
    };
    let (property, ext) = match rest {
        [p, e] if PROPERTIES.contains(&p.as_str()) => (Some(p.clone()), e.clone()),
        [e] if !PROPERTIES.contains(&e.as_str()) => (None, e.clone()),
        _ => panic!(
            "{file}:{}: PARAMETERS item {words:?} of {}: want `name [PROPERTY] EXTERNAL_TYPE` \
             with the external type spelled out",
            h.line, h.name
        ),
    };
    Item::Param {
        name,
        property,
        ext,
    }
}

/// The C type extproc passes for `item` of `spec`, or why it cannot be.
fn c_type_of(spec: &CallSpec, item: &Item) -> Result<String, String> {
    let Item::Param {
        name,
        property,
        ext,
    } = item
    else {
        return Ok("OCIExtProcContext *".into());
    };
    let mode = match name {
        None => Mode::Out, // RETURN properties come by reference
        Some(n) => spec
            .heading
            .formals
            .iter()
            .find(|f| &f.name == n)
            .map(|f| f.mode)
            .ok_or_else(|| format!("{n} is not a parameter of {}", spec.heading.name))?,
    };
    let by_ref = mode != Mode::In;
    let scalar = |c: &str| {
        if by_ref {
            format!("{c} *")
        } else {
            c.to_string()
        }
    };
    match (property.as_deref(), ext.as_str()) {
        (Some("INDICATOR"), "SHORT") => Ok(scalar("short")),
        (Some("LENGTH"), "INT") => Ok(scalar("int")),
        (Some("MAXLEN"), "INT") if by_ref => Ok("int *".into()),
        (Some("MAXLEN"), _) => Err("MAXLEN is for OUT and IN OUT parameters only".into()),
        (None, "RAW") => Ok(if by_ref {
            "uint8_t *"
        } else {
            "const uint8_t *"
        }
        .into()),
        (None, "STRING") => Ok(if by_ref { "char *" } else { "const char *" }.into()),
        (None, "INT") => Ok(scalar("int")),
        (None, "SHORT") => Ok(scalar("short")),
        (p, e) => Err(format!(
            "{}{} {e}: not a mapping this test knows",
            name.clone().unwrap_or_else(|| "RETURN".into()),
            p.map(|p| format!(" {p}")).unwrap_or_default()
        )),
    }
}

/// The C prototype a call specification implies: return type and parameter types.
fn implied_prototype(spec: &CallSpec) -> Result<(String, Vec<String>), Vec<String>> {
    let mut errors = Vec::new();
    let h = &spec.heading;
    let mut params = Vec::new();
    let mut ret = if h.function {
        None
    } else {
        Some("void".to_string())
    };
    let mut value_of = BTreeMap::new();
    for (n, item) in spec.items.iter().enumerate() {
        match item {
            Item::Param {
                name: None,
                property: None,
                ext,
            } => {
                if n + 1 != spec.items.len() {
                    errors.push("RETURN must be the last item of PARAMETERS".into());
                }
                let plsql = h.returns.clone().unwrap_or_default();
                let c = match (ext.as_str(), plsql.as_str()) {
                    ("INT", "PLS_INTEGER" | "BINARY_INTEGER" | "INTEGER") => "int",
                    ("STRING", "VARCHAR2") => "char *",
                    _ => {
                        errors.push(format!("RETURN {ext} for a function returning {plsql}"));
                        "?"
                    }
                };
                ret = Some(c.to_string());
            }
            _ => {
                if let Item::Param {
                    name: Some(name),
                    property: None,
                    ext,
                } = item
                {
                    value_of.insert(name.clone(), ext.clone());
                }
                match c_type_of(spec, item) {
                    Ok(t) => params.push(t),
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    if h.function && ret.is_none() {
        errors.push("a function's PARAMETERS must end with RETURN".into());
    }
    let has_context = spec.items.first() == Some(&Item::Context);
    if spec.with_context != has_context {
        errors.push("WITH CONTEXT and a first PARAMETERS item CONTEXT go together".into());
    }
    if spec.library != "dco_lib" {
        errors.push(format!("LIBRARY {} (want dco_lib)", spec.library));
    }
    // Every formal is passed once, with an external type that fits its PL/SQL type.
    for f in &h.formals {
        match value_of.get(&f.name) {
            None => errors.push(format!("parameter {} is not passed in PARAMETERS", f.name)),
            Some(ext) => {
                let fits = matches!(
                    (f.ty.as_str(), ext.as_str()),
                    ("RAW", "RAW")
                        | ("VARCHAR2", "STRING")
                        | ("PLS_INTEGER" | "BINARY_INTEGER" | "INTEGER", "INT")
                );
                if !fits {
                    errors.push(format!("{} {} passed as {ext}", f.name, f.ty));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok((ret.unwrap_or_default(), params))
    } else {
        Err(errors)
    }
}

/// A C prototype from the header: return type and parameter types, normalised.
#[derive(Debug, Clone, PartialEq)]
struct Proto {
    ret: String,
    params: Vec<String>,
}

fn normalize_c_type(t: &str) -> String {
    let t = t.replace('*', " * ");
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = t.replace("unsigned char", "uint8_t");
    t.replace("* *", "**")
}

/// Every dco_ext_* prototype of include/dco.h.
fn header_prototypes() -> BTreeMap<String, Proto> {
    let text = read(&root().join("include/dco.h"));
    // Without comments and preprocessor lines.
    let mut clean = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("/*") {
        clean.push_str(&rest[..at]);
        rest = &rest[at + 2..];
        let end = rest.find("*/").expect("unterminated comment in dco.h");
        rest = &rest[end + 2..];
    }
    clean.push_str(rest);
    let clean: String = clean
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeMap::new();
    for stmt in clean.split(';') {
        let Some(at) = stmt.find("dco_ext_") else {
            continue;
        };
        let Some(open) = stmt[at..].find('(').map(|o| o + at) else {
            continue;
        };
        let name = stmt[at..open].trim().to_string();
        // The return type: what stands before the name since the last brace (`extern "C" {`).
        let before = &stmt[..at];
        let ret = normalize_c_type(before.rsplit(['{', '}']).next().unwrap_or(before));
        let close = stmt.rfind(')').expect("prototype without )");
        let params = stmt[open + 1..close]
            .split(',')
            .map(|p| {
                let p = p.trim();
                // The type is everything before the parameter's name.
                let name_at = p
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map(|k| k + 1)
                    .unwrap_or(0);
                normalize_c_type(&p[..name_at])
            })
            .collect();
        out.insert(name, Proto { ret, params });
    }
    out
}

/// Checks call specifications against prototypes: the mismatches, in words.
fn check_call_specs(specs: &[CallSpec], protos: &BTreeMap<String, Proto>) -> Vec<String> {
    let mut problems = Vec::new();
    for s in specs {
        let at = format!("{}:{} ({})", s.file, s.heading.line, s.c_name);
        let Some(proto) = protos.get(&s.c_name) else {
            problems.push(format!("{at}: no such function in include/dco.h"));
            continue;
        };
        match implied_prototype(s) {
            Err(errors) => {
                for e in errors {
                    problems.push(format!("{at}: {e}"));
                }
            }
            Ok((ret, params)) => {
                if ret != proto.ret {
                    problems.push(format!(
                        "{at}: returns {ret}, the header says {}",
                        proto.ret
                    ));
                }
                if params.len() != proto.params.len() {
                    problems.push(format!(
                        "{at}: {} parameters ({}), the header has {} ({})",
                        params.len(),
                        params.join(", "),
                        proto.params.len(),
                        proto.params.join(", ")
                    ));
                }
                for (n, (mine, theirs)) in params.iter().zip(&proto.params).enumerate() {
                    if mine != theirs {
                        problems.push(format!(
                            "{at}: parameter {} is {mine} by the call spec, {theirs} in the header",
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    problems
}

fn all_call_specs() -> Vec<CallSpec> {
    plsql_files()
        .iter()
        .flat_map(|f| {
            let name = format!("plsql/{}", f.file_name().unwrap().to_string_lossy());
            call_specs(&name, &read(f))
        })
        .collect()
}

#[test]
fn call_specs_match_the_c_prototypes() {
    let protos = header_prototypes();
    assert!(
        protos.len() >= 12,
        "found only {} dco_ext_* prototypes in include/dco.h: {:?}",
        protos.len(),
        protos.keys()
    );
    let specs = all_call_specs();
    assert!(
        !specs.is_empty(),
        "no LANGUAGE C call specification in plsql/"
    );
    for s in &specs {
        assert_eq!(
            s.file, "plsql/dco_extproc.pkb",
            "call specification of {} outside the extproc body",
            s.c_name
        );
    }
    let problems = check_call_specs(&specs, &protos);
    assert!(
        problems.is_empty(),
        "call specifications that do not match include/dco.h:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_extproc_entry_point_has_a_call_spec() {
    let protos = header_prototypes();
    let used: BTreeSet<String> = all_call_specs().into_iter().map(|s| s.c_name).collect();
    let unused: Vec<&String> = protos.keys().filter(|k| !used.contains(*k)).collect();
    assert!(
        unused.is_empty(),
        "dco_ext_* functions of include/dco.h that no call specification uses: {unused:?}"
    );
}

#[test]
fn the_call_spec_check_catches_wrong_parameter_lists() {
    let protos = header_prototypes();
    let text = read(&root().join("plsql/dco_extproc.pkb"));
    let mutations = [
        // A MAXLEN left out: one parameter fewer than the C function takes.
        (
            "buf RAW, buf LENGTH INT, buf MAXLEN INT, buf INDICATOR SHORT, RETURN INT);",
            "buf RAW, buf LENGTH INT, buf INDICATOR SHORT, RETURN INT);",
            "dco_ext_read_request",
        ),
        // An indicator as INT where C has short.
        (
            "data RAW, data LENGTH INT, data INDICATOR SHORT, RETURN INT",
            "data RAW, data LENGTH INT, data INDICATOR INT, RETURN INT",
            "dco_ext_write",
        ),
        // LENGTH before the value: the order differs from the prototype.
        (
            "data RAW, data LENGTH INT,",
            "data LENGTH INT, data RAW,",
            "dco_ext_write",
        ),
        // An IN OUT RAW made IN: its LENGTH would come by value, C wants int *.
        (
            "    from_byte  IN PLS_INTEGER,\n    buf        IN OUT RAW)",
            "    from_byte  IN PLS_INTEGER,\n    buf        IN RAW)",
            "dco_ext_read_chunk",
        ),
        // The return indicator dropped.
        (
            "PARAMETERS (CONTEXT, RETURN INDICATOR SHORT, RETURN STRING);",
            "PARAMETERS (CONTEXT, RETURN STRING);",
            "dco_ext_last_error",
        ),
        // Without WITH CONTEXT the context pointer is not passed.
        (
            "NAME \"dco_ext_flush\" WITH CONTEXT\n    PARAMETERS (CONTEXT, RETURN INT);",
            "NAME \"dco_ext_flush\"\n    PARAMETERS (RETURN INT);",
            "dco_ext_flush",
        ),
    ];
    for (from, to, function) in mutations {
        assert!(
            text.contains(from),
            "dco_extproc.pkb no longer contains {from:?}: update this test"
        );
        let broken = text.replacen(from, to, 1);
        let specs = call_specs("broken", &broken);
        let problems = check_call_specs(&specs, &protos);
        assert!(
            problems.iter().any(|p| p.contains(function)),
            "replacing {from:?} with {to:?} went unnoticed: {problems:?}"
        );
        assert!(
            problems.iter().all(|p| p.contains(function)),
            "replacing {from:?} with {to:?} was blamed on other functions too: {problems:?}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// The specification: exceptions and both bodies

#[test]
fn exceptions_cover_every_dco_code() {
    let header = read(&root().join("include/dco.h"));
    let mut codes = BTreeMap::new();
    for line in header.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() == 3 && w[0] == "#define" && w[1].starts_with("DCO_E_") {
            codes.insert(w[1].to_string(), w[2].parse::<i32>().expect("code"));
        }
    }
    assert!(codes.len() >= 14, "DCO_E_* codes in dco.h: {codes:?}");
    let toks: Vec<Tok> = tokenize(&read(&root().join("plsql/dco.pks")))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    // PRAGMA EXCEPTION_INIT(name, -code)
    let mut pragmas = BTreeMap::new();
    for k in 0..toks.len() {
        if toks[k].is("EXCEPTION_INIT") {
            let name = toks[k + 2].text().to_lowercase();
            assert!(
                toks[k + 4].is_punct("-"),
                "EXCEPTION_INIT({name}, -n) expected"
            );
            let n: i32 = toks[k + 5].text().parse().expect("error number");
            pragmas.insert(name, -n);
        }
    }
    let want_name = |c: &str| -> String {
        match c {
            "DCO_E_PANIC" => "internal".to_string(),
            c => c.trim_start_matches("DCO_E_").to_lowercase(),
        }
    };
    for (c, code) in &codes {
        let name = want_name(c);
        let sqlcode = pragmas
            .get(&name)
            .unwrap_or_else(|| panic!("dco.pks has no exception {name} for {c}"));
        assert_eq!(
            *sqlcode,
            -(20100 - code),
            "dco.{name} ({c} = {code}) must be ORA-{}",
            20100 - code
        );
    }
    let distinct: BTreeSet<i32> = pragmas.values().copied().collect();
    assert_eq!(distinct.len(), pragmas.len(), "two exceptions share a code");
}

/// The public subprograms of a package specification, or the subprograms of a body: name,
/// kind and parameter names and modes.
fn subprograms(text: &str) -> BTreeSet<String> {
    let toks = tokenize(text);
    let mut out = BTreeSet::new();
    for k in 0..toks.len() {
        if (toks[k].0.is("FUNCTION") || toks[k].0.is("PROCEDURE"))
            && matches!(toks.get(k + 1).map(|t| &t.0), Some(Tok::Word(_)))
        {
            let h = heading(&toks, k);
            let params: Vec<String> = h
                .formals
                .iter()
                .map(|f| format!("{} {:?} {}", f.name, f.mode, f.ty))
                .collect();
            out.insert(format!(
                "{} {}({}){}",
                if h.function { "function" } else { "procedure" },
                h.name,
                params.join(", "),
                h.returns
                    .map(|r| format!(" return {r}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

#[test]
fn both_bodies_implement_the_specification() {
    let spec = subprograms(&read(&root().join("plsql/dco.pks")));
    for want in [
        "procedure write(data In RAW)",
        "procedure line(text In VARCHAR2)",
        "function send_request(proxy_id In PLS_INTEGER, buffered In BOOLEAN) return PLS_INTEGER",
        "procedure send_request(proxy_id In PLS_INTEGER, buffered In BOOLEAN)",
        "procedure flush()",
        "procedure read_request(req_id In PLS_INTEGER, reply InOut BLOB, timeout In PLS_INTEGER)",
        "procedure call_sync(proxy_id In PLS_INTEGER, reply InOut BLOB, timeout In PLS_INTEGER)",
        "function last_rcode() return PLS_INTEGER",
        "procedure close()",
    ] {
        assert!(
            spec.contains(want),
            "dco.pks lacks `{want}`; it has:\n{}",
            spec.iter().cloned().collect::<Vec<_>>().join("\n")
        );
    }
    for body in ["dco_extproc.pkb", "dco_utl_tcp.pkb"] {
        let have = subprograms(&read(&root().join("plsql").join(body)));
        let missing: Vec<&String> = spec.iter().filter(|s| !have.contains(*s)).collect();
        assert!(
            missing.is_empty(),
            "plsql/{body} does not implement {missing:?}"
        );
    }
    for package in ["dco_pdu", "dco_http"] {
        let spec = subprograms(&read(&root().join(format!("plsql/{package}.pks"))));
        let body = subprograms(&read(&root().join(format!("plsql/{package}.pkb"))));
        let missing: Vec<&String> = spec.iter().filter(|s| !body.contains(*s)).collect();
        assert!(
            missing.is_empty(),
            "plsql/{package}.pkb does not implement {missing:?}"
        );
    }
    let http = subprograms(&read(&root().join("plsql/dco_http.pks")));
    for want in [
        "function request(proxy_id In PLS_INTEGER, method In VARCHAR2, path In VARCHAR2, \
         headers In HEADERS_T, body In BLOB, buffered In BOOLEAN) return PLS_INTEGER",
        "function read(req_id In PLS_INTEGER, timeout_ms In PLS_INTEGER) return RESPONSE_T",
        "function header(r In RESPONSE_T, name In VARCHAR2) return VARCHAR2",
        "function body_text(r In RESPONSE_T) return CLOB",
        "procedure add_header(h InOut HEADERS_T, name In VARCHAR2, value In VARCHAR2)",
    ] {
        assert!(
            http.contains(want),
            "dco_http.pks lacks `{want}`; it has:\n{}",
            http.iter().cloned().collect::<Vec<_>>().join("\n")
        );
    }
    assert!(
        http.iter()
            .any(|s| s.starts_with("function call(") && s.contains("body In BLOB")),
        "dco_http.pks has no call with a BLOB body: {http:?}"
    );
}

/// The names a package specification declares: its subprograms, exceptions and constants.
fn declared_names(text: &str) -> BTreeSet<String> {
    let toks = tokenize(text);
    let mut out = BTreeSet::new();
    for k in 0..toks.len().saturating_sub(1) {
        let (this, next) = (&toks[k].0, &toks[k + 1].0);
        if this.is("FUNCTION") || this.is("PROCEDURE") {
            if let Tok::Word(name) = next {
                out.insert(name.to_lowercase());
            }
        } else if let Tok::Word(name) = this {
            if next.is("EXCEPTION") || next.is("CONSTANT") {
                out.insert(name.to_lowercase());
            }
        }
    }
    out
}

#[test]
fn dco_http_uses_only_the_dco_specification() {
    let spec = declared_names(&read(&root().join("plsql/dco.pks")));
    for want in [
        "write",
        "call",
        "read_request",
        "last_error",
        "app_fail",
        "error_base",
    ] {
        assert!(spec.contains(want), "dco.pks declares no {want}: {spec:?}");
    }
    let mut used = BTreeSet::new();
    for file in ["dco_http.pks", "dco_http.pkb"] {
        let toks = tokenize(&read(&root().join("plsql").join(file)));
        for k in 0..toks.len().saturating_sub(2) {
            if toks[k].0.is("dco") && toks[k + 1].0.is_punct(".") {
                let name = toks[k + 2].0.text().to_lowercase();
                assert!(
                    spec.contains(&name),
                    "plsql/{file}:{}: dco.{name} is not declared by dco.pks, so one of the \
                     bodies may lack it",
                    toks[k].1
                );
                used.insert(name);
            }
        }
    }
    for want in [
        "write",
        "send_request",
        "read_request",
        "call",
        "last_error",
        "app_fail",
    ] {
        assert!(
            used.contains(want),
            "plsql/dco_http.pkb no longer uses dco.{want}: update this test ({used:?})"
        );
    }
}
