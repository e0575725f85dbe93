//! Languages: plausible source files (so diffs have real function bodies and
//! hunk headers), stack traces as each runtime prints them, and the
//! exceptions each one raises.
//!
//! The source is synthetic but shaped like the real thing: a package or
//! module header, a class where the language has one, functions of 6–60
//! lines. What matters to triage is the shape: where a function starts, what
//! `git diff` puts in a hunk header (the last line before the hunk that starts
//! with a letter, `_` or `$`, i.e. often the *class*, not the method), and how
//! a frame names the file (JVM frames name a package that need not mirror the
//! repository path).

use super::rng::Rng;

/// A service's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Python,
    Java,
    Kotlin,
    Go,
    Node,
    TypeScript,
    Ruby,
    CSharp,
}

pub(super) const LANGS: [Lang; 8] = [
    Lang::Python,
    Lang::Java,
    Lang::Kotlin,
    Lang::Go,
    Lang::Node,
    Lang::TypeScript,
    Lang::Ruby,
    Lang::CSharp,
];

impl Lang {
    /// The truth file's name for it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Java => "java",
            Lang::Kotlin => "kotlin",
            Lang::Go => "go",
            Lang::Node => "node",
            Lang::TypeScript => "typescript",
            Lang::Ruby => "ruby",
            Lang::CSharp => "csharp",
        }
    }
    fn is_jvm(self) -> bool {
        matches!(self, Lang::Java | Lang::Kotlin)
    }
    fn semi(self) -> &'static str {
        match self {
            Lang::Java | Lang::Node | Lang::TypeScript | Lang::CSharp => ";",
            _ => "",
        }
    }
}

const NOUNS: [&str; 32] = [
    "order",
    "cart",
    "item",
    "price",
    "quote",
    "discount",
    "tax",
    "region",
    "currency",
    "user",
    "session",
    "invoice",
    "shipment",
    "rate",
    "amount",
    "total",
    "sku",
    "coupon",
    "balance",
    "ledger",
    "token",
    "address",
    "payment",
    "refund",
    "stock",
    "warehouse",
    "carrier",
    "basket",
    "customer",
    "promo",
    "receipt",
    "voucher",
];
const VERBS: [&str; 16] = [
    "quote",
    "apply",
    "compute",
    "load",
    "validate",
    "resolve",
    "build",
    "fetch",
    "merge",
    "price",
    "reserve",
    "settle",
    "normalize",
    "render",
    "refresh",
    "split",
];
const ROLES: [&str; 8] = [
    "Service",
    "Repository",
    "Handler",
    "Client",
    "Calculator",
    "Controller",
    "Policy",
    "Mapper",
];

fn snake(words: &[&str]) -> String {
    words.join("_")
}
fn camel(words: &[&str]) -> String {
    let p = pascal(words);
    let mut c = p.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}
fn pascal(words: &[&str]) -> String {
    words
        .iter()
        .flat_map(|w| w.split('_'))
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A function in a source file (1-based lines, current revision).
#[derive(Debug, Clone)]
pub(super) struct Func {
    /// Name as a frame prints it.
    pub(super) name: String,
    /// The line of its signature (`def quote(...)`, `public double quote(...) {`).
    pub(super) def_line: u32,
    /// Its last body line (before the closing brace/`end`, if any).
    pub(super) last_line: u32,
}

/// One source file of a service's repository.
#[derive(Debug, Clone)]
pub(super) struct SourceFile {
    pub(super) lang: Lang,
    /// Repository path (`src/catalog/Pricing.java`).
    pub(super) path: String,
    /// The path a frame prints (`/app/src/...`, `Pricing.java`, ...).
    pub(super) runtime_path: String,
    /// Package / namespace / module prefix frames print (JVM, C#, Go).
    pub(super) module: String,
    /// Class (JVM, C#, Ruby, sometimes Python / JS), if any.
    pub(super) class: Option<String>,
    pub(super) lines: Vec<String>,
    pub(super) funcs: Vec<Func>,
}

impl SourceFile {
    /// The function whose body holds `line`.
    pub(super) fn func_at(&self, line: u32) -> Option<usize> {
        self.funcs
            .iter()
            .position(|f| f.def_line < line && line <= f.last_line)
    }

    /// Replaces `remove` lines from `at` (1-based) with `insert`, keeping the
    /// function table in step.
    pub(super) fn splice(&mut self, at: u32, remove: usize, insert: &[String]) {
        let i = at as usize - 1;
        self.lines
            .splice(i..i + remove, insert.iter().cloned())
            .for_each(drop);
        let delta = insert.len() as i64 - remove as i64;
        for f in &mut self.funcs {
            if f.def_line >= at {
                f.def_line = (i64::from(f.def_line) + delta) as u32;
            }
            if f.last_line >= at {
                f.last_line = (i64::from(f.last_line) + delta) as u32;
            }
        }
    }

    /// The text of `line` (1-based).
    pub(super) fn line(&self, line: u32) -> &str {
        self.lines.get(line as usize - 1).map_or("", String::as_str)
    }
}

/// Identifiers a generated body uses, in the language's case.
struct Ids {
    lang: Lang,
}

impl Ids {
    fn var(&self, rng: &mut Rng) -> String {
        let a = *rng.pick(&NOUNS);
        match self.lang {
            Lang::Python | Lang::Ruby => a.to_owned(),
            _ => a.to_owned(),
        }
    }
    fn var2(&self, rng: &mut Rng) -> String {
        let (a, b) = (*rng.pick(&NOUNS), *rng.pick(&NOUNS));
        match self.lang {
            Lang::Python | Lang::Ruby => snake(&[a, b]),
            _ => camel(&[a, b]),
        }
    }
    fn method(&self, rng: &mut Rng) -> String {
        let (v, n) = (*rng.pick(&VERBS), *rng.pick(&NOUNS));
        self.func_name(&[v, n])
    }
    fn func_name(&self, w: &[&str]) -> String {
        match self.lang {
            Lang::Python | Lang::Ruby => snake(w),
            Lang::CSharp => pascal(w),
            _ => camel(w),
        }
    }
}

/// One generated statement (one or more lines, without indentation).
fn statement(lang: Lang, ids: &Ids, rng: &mut Rng) -> Vec<String> {
    let s = lang.semi();
    let (v, w, m) = (ids.var2(rng), ids.var(rng), ids.method(rng));
    let n = *rng.pick(&[2, 3, 5, 10, 100, 1000, 30, 60]);
    let field = ids.var(rng);
    let decl = |v: &str| -> String {
        match lang {
            Lang::Python | Lang::Ruby => v.to_owned(),
            Lang::Java | Lang::CSharp => format!("var {v}"),
            Lang::Kotlin => format!("val {v}"),
            Lang::Node | Lang::TypeScript => format!("const {v}"),
            Lang::Go => v.to_owned(),
        }
    };
    let assign = if lang == Lang::Go { ":=" } else { "=" };
    let this = match lang {
        Lang::Python => "self.",
        Lang::Node | Lang::TypeScript => "this.",
        Lang::Go => "s.",
        Lang::Ruby => "@",
        _ => "",
    };
    match rng.below(7) {
        0 | 1 => vec![format!("{} {assign} {this}{w}s.{m}({field}){s}", decl(&v))],
        2 => vec![format!("{} {assign} {w}.{field} * {n}{s}", decl(&v))],
        3 => match lang {
            Lang::Python => vec![
                format!("if {w} is None:"),
                format!("    raise ValueError(\"missing {w}\")"),
            ],
            Lang::Ruby => vec![format!("raise ArgumentError, \"missing {w}\" if {w}.nil?")],
            Lang::Go => vec![
                format!("if {w} == nil {{"),
                format!("\treturn nil, fmt.Errorf(\"missing {w}\")"),
                "}".to_owned(),
            ],
            Lang::Kotlin => vec![format!("requireNotNull({w}) {{ \"missing {w}\" }}")],
            Lang::Node | Lang::TypeScript => vec![
                format!("if (!{w}) {{"),
                format!("  throw new Error('missing {w}');"),
                "}".to_owned(),
            ],
            Lang::Java | Lang::CSharp => vec![
                format!("if ({w} == null) {{"),
                format!(
                    "    throw new {}(\"missing {w}\");",
                    if lang == Lang::Java {
                        "IllegalArgumentException"
                    } else {
                        "ArgumentNullException"
                    }
                ),
                "}".to_owned(),
            ],
        },
        4 => vec![match lang {
            Lang::Python => format!("logger.debug(\"{m} %s\", {w}.{field})"),
            Lang::Ruby => format!("Rails.logger.debug(\"{m} #{{{w}.{field}}}\")"),
            Lang::Go => format!("s.log.Debug(\"{m}\", \"{field}\", {w}.{field})"),
            Lang::Node | Lang::TypeScript => {
                format!("logger.debug({{ {field}: {w}.{field} }}, '{m}');")
            }
            Lang::Java | Lang::Kotlin => {
                format!("log.debug(\"{m} {{}}\", {w}.get{}()){s}", pascal(&[&field]))
            }
            Lang::CSharp => format!(
                "_logger.LogDebug(\"{m} {{{}}}\", {w}.{});",
                pascal(&[&field]),
                pascal(&[&field])
            ),
        }],
        5 => match lang {
            Lang::Python => vec![
                format!("for {field} in {w}.lines:"),
                format!("    {v} += {field}.amount * {field}.qty"),
            ],
            Lang::Ruby => vec![
                format!("{w}.lines.each do |{field}|"),
                format!("  {v} += {field}.amount * {field}.qty"),
                "end".to_owned(),
            ],
            Lang::Go => vec![
                format!("for _, {field} := range {w}.Lines {{"),
                format!("\t{v} += {field}.Amount * float64({field}.Qty)"),
                "}".to_owned(),
            ],
            Lang::Kotlin => vec![format!(
                "val {v} = {w}.lines.sumOf {{ it.amount * it.qty }}"
            )],
            Lang::Node | Lang::TypeScript => vec![
                format!("for (const {field} of {w}.lines) {{"),
                format!("  {v} += {field}.amount * {field}.qty;"),
                "}".to_owned(),
            ],
            Lang::Java => vec![
                format!("for (var {field} : {w}.getLines()) {{"),
                format!("    {v} += {field}.getAmount() * {field}.getQty();"),
                "}".to_owned(),
            ],
            Lang::CSharp => vec![
                format!("foreach (var {field} in {w}.Lines)"),
                "{".to_owned(),
                format!("    {v} += {field}.Amount * {field}.Qty;"),
                "}".to_owned(),
            ],
        },
        _ => vec![format!(
            "{} {assign} {this}cache.get(\"{}:\" + {w}.id){s}",
            decl(&v),
            field
        )],
    }
}

fn params(lang: Lang, rng: &mut Rng) -> String {
    let (a, b) = (*rng.pick(&NOUNS), *rng.pick(&NOUNS));
    let ty = |w: &str| pascal(&[w]);
    match lang {
        Lang::Python => {
            if rng.chance(0.3) {
                format!("{a}, {b}=None")
            } else {
                a.to_owned()
            }
        }
        Lang::Ruby | Lang::Node => a.to_owned(),
        Lang::TypeScript => format!("{a}: {}", ty(a)),
        Lang::Java | Lang::CSharp => format!("{} {a}", ty(a)),
        Lang::Kotlin => format!("{a}: {}", ty(a)),
        Lang::Go => format!("ctx context.Context, {a} *{}", ty(a)),
    }
}

/// Generates a source file at `path` with 3–6 functions; at least one has a
/// body of 45+ lines (room for bugs raised away from the change).
pub(super) fn gen_file(
    rng: &mut Rng,
    lang: Lang,
    path: String,
    runtime_path: String,
    module: String,
    class: Option<String>,
) -> SourceFile {
    let ids = Ids { lang };
    let mut lines = file_header(lang, &module);
    // A class wraps the functions, except in Go and often in Python/JS.
    let in_class = class.is_some();
    let fn_ind = if in_class && lang != Lang::Go {
        indent(lang)
    } else {
        ""
    };
    if let Some(c) = &class {
        lines.extend(class_open(lang, c, rng));
    }
    let n_funcs = 3 + rng.below(4);
    let long = rng.below(n_funcs);
    let mut used = Vec::new();
    let mut funcs = Vec::new();
    for fi in 0..n_funcs {
        let mut name;
        loop {
            name = ids.method(rng);
            if !used.contains(&name) {
                break;
            }
        }
        used.push(name.clone());
        let p = params(lang, rng);
        let ret_ty = pascal(&[*rng.pick(&NOUNS)]);
        if lang == Lang::Go {
            name = pascal(&[&name]);
        }
        let sig = signature(lang, &name, &p, &ret_ty, class.as_deref());
        let shape = FuncShape {
            lang,
            fn_ind,
            sig,
            long: fi == long,
        };
        funcs.push(push_func(&mut lines, &ids, shape, name, rng));
    }
    if in_class {
        match lang {
            Lang::Python | Lang::Go => {}
            Lang::Ruby => lines.push("end".into()),
            _ => lines.push("}".into()),
        }
    }
    SourceFile {
        lang,
        path,
        runtime_path,
        module,
        class,
        lines,
        funcs,
    }
}

/// One indentation step in `lang`'s usual style.
fn indent(lang: Lang) -> &'static str {
    match lang {
        Lang::Go => "\t",
        Lang::Node | Lang::TypeScript | Lang::Ruby => "  ",
        _ => "    ",
    }
}

/// The imports and package line a file of `lang` in `module` starts with.
fn file_header(lang: Lang, module: &str) -> Vec<String> {
    match lang {
        Lang::Python => vec![
            "import logging".into(),
            "from decimal import Decimal".into(),
            String::new(),
            format!("from {}.models import Order", module.replace('/', ".")),
            String::new(),
            "logger = logging.getLogger(__name__)".into(),
            String::new(),
        ],
        Lang::Java => vec![
            format!("package {module};"),
            String::new(),
            "import java.util.List;".into(),
            "import org.slf4j.Logger;".into(),
            "import org.springframework.stereotype.Service;".into(),
            String::new(),
        ],
        Lang::Kotlin => vec![
            format!("package {module}"),
            String::new(),
            "import org.springframework.stereotype.Service".into(),
            String::new(),
        ],
        Lang::Go => vec![
            format!("package {}", module.rsplit('/').next().unwrap_or("main")),
            String::new(),
            "import (".into(),
            "\t\"context\"".into(),
            "\t\"fmt\"".into(),
            ")".into(),
            String::new(),
        ],
        Lang::Node => vec![
            "'use strict';".into(),
            String::new(),
            "const logger = require('../lib/logger');".into(),
            String::new(),
        ],
        Lang::TypeScript => vec![
            "import { logger } from '../lib/logger';".into(),
            "import type { Order } from '../types';".into(),
            String::new(),
        ],
        Lang::Ruby => vec!["# frozen_string_literal: true".into(), String::new()],
        Lang::CSharp => vec![
            "using Microsoft.Extensions.Logging;".into(),
            String::new(),
            format!("namespace {module};"),
            String::new(),
        ],
    }
}

/// The lines that open class `c` (Go: the struct the methods hang on).
fn class_open(lang: Lang, c: &str, rng: &mut Rng) -> Vec<String> {
    match lang {
        Lang::Python => vec![format!("class {c}:")],
        Lang::Java => {
            let decl = if rng.chance(0.4) {
                format!(
                    "public class {c} extends Base{} {{",
                    ROLES[rng.below(ROLES.len())]
                )
            } else {
                format!("public class {c} {{")
            };
            vec!["@Service".into(), decl]
        }
        Lang::Kotlin => vec![format!("class {c}(private val repo: Repository) {{")],
        Lang::Node | Lang::TypeScript => vec![format!("class {c} {{")],
        Lang::Ruby => vec![format!("class {c}")],
        Lang::CSharp => vec![format!("public class {c}"), "{".into()],
        Lang::Go => vec![
            format!("type {c} struct {{"),
            "\tlog   Logger".into(),
            "\tcache Cache".into(),
            "}".into(),
            String::new(),
        ],
    }
}

/// A function's signature line (`def quote(self, order):`, `func (s *X) Quote(...) {`).
fn signature(lang: Lang, name: &str, p: &str, ret_ty: &str, class: Option<&str>) -> String {
    let in_class = class.is_some();
    match lang {
        Lang::Python if in_class => format!("def {name}(self, {p}):"),
        Lang::Python => format!("def {name}({p}):"),
        Lang::Java => format!("public {ret_ty} {name}({p}) {{"),
        Lang::Kotlin => format!("fun {name}({p}): {ret_ty} {{"),
        Lang::Go => match class {
            Some(c) => format!("func (s *{c}) {name}({p}) (*{ret_ty}, error) {{"),
            None => format!("func {name}({p}) (*{ret_ty}, error) {{"),
        },
        Lang::Node if in_class => format!("async {name}({p}) {{"),
        Lang::Node => format!("async function {name}({p}) {{"),
        Lang::TypeScript if in_class => format!("async {name}({p}): Promise<{ret_ty}> {{"),
        Lang::TypeScript => format!("export async function {name}({p}): Promise<{ret_ty}> {{"),
        Lang::Ruby => format!("def {name}({p})"),
        Lang::CSharp => format!("public {ret_ty} {name}({p})"),
    }
}

/// What `push_func` writes: the signature, at which indentation, and
/// whether the body is a long one (45+ lines).
struct FuncShape<'a> {
    lang: Lang,
    fn_ind: &'a str,
    sig: String,
    long: bool,
}

/// Appends one function (annotation, signature, body, return, close) to
/// `lines` and returns where it sits.
fn push_func(
    lines: &mut Vec<String>,
    ids: &Ids,
    shape: FuncShape<'_>,
    name: String,
    rng: &mut Rng,
) -> Func {
    let FuncShape {
        lang,
        fn_ind,
        sig,
        long,
    } = shape;
    if matches!(lang, Lang::Java | Lang::CSharp | Lang::Kotlin) && rng.chance(0.3) {
        lines.push(format!("{fn_ind}@Transactional"));
    }
    let body_len = if long {
        45 + rng.below(20)
    } else {
        5 + rng.below(20)
    };
    lines.push(format!("{fn_ind}{sig}"));
    let def_line = lines.len() as u32;
    if lang == Lang::CSharp {
        lines.push(format!("{fn_ind}{{"));
    }
    let body_ind = format!("{fn_ind}{}", indent(lang));
    let mut body = 0;
    while body < body_len {
        for l in statement(lang, ids, rng) {
            let l = if lang == Lang::Go {
                l.replace("    ", "\t")
            } else {
                l
            };
            lines.push(format!("{body_ind}{l}"));
            body += 1;
        }
    }
    let v = ids.var2(rng);
    let ret = match lang {
        Lang::Go => format!("return {v}, nil"),
        Lang::Ruby => v,
        Lang::Kotlin | Lang::Python => format!("return {v}"),
        _ => format!("return {v};"),
    };
    lines.push(format!("{body_ind}{ret}"));
    let last_line = lines.len() as u32;
    match lang {
        Lang::Python => {}
        Lang::Ruby => lines.push(format!("{fn_ind}end")),
        _ => lines.push(format!("{fn_ind}}}")),
    }
    lines.push(String::new());
    Func {
        name,
        def_line,
        last_line,
    }
}

/// The class name files of a language use for `noun`.
pub(super) fn class_name(rng: &mut Rng, noun: &str) -> String {
    pascal(&[noun]) + ROLES[rng.below(ROLES.len())]
}

/// One stack frame, innermost-first order in `Stack::frames`.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    /// Fully rendered line(s) of this frame in its runtime's format.
    pub(super) text: String,
}

/// An app frame at `line` of `file` in function `func`.
pub(super) fn app_frame(file: &SourceFile, func: &str, line: u32, rng: &mut Rng) -> Frame {
    let cls = file.class.as_deref();
    let text = match file.lang {
        Lang::Python => format!(
            "  File \"{}\", line {line}, in {func}\n    {}",
            file.runtime_path,
            file.line(line).trim()
        ),
        Lang::Java | Lang::Kotlin => {
            let c = cls.unwrap_or("Main");
            let file_name = file.path.rsplit('/').next().unwrap_or("");
            let f = if file.lang == Lang::Kotlin && rng.chance(0.2) {
                format!("{func}$lambda$0")
            } else {
                func.to_owned()
            };
            format!("\tat {}.{c}.{f}({file_name}:{line})", file.module)
        }
        Lang::Go => {
            let recv = cls.map_or(String::new(), |c| format!("(*{c})."));
            format!(
                "{}.{recv}{func}(0xc000{:06x}, {{0x{:x}, 0xc000{:06x}}})\n\t{}:{line} +0x{:x}",
                file.module,
                rng.next() & 0xff_ffff,
                rng.next() & 0xfff_ffff,
                rng.next() & 0xff_ffff,
                file.runtime_path,
                rng.next() & 0x3ff
            )
        }
        Lang::Node | Lang::TypeScript => {
            let col = 5 + rng.below(30);
            let name = match cls {
                Some(c) => format!("{c}.{func}"),
                None => func.to_owned(),
            };
            let asy = if rng.chance(0.3) { "async " } else { "" };
            format!("    at {asy}{name} ({}:{line}:{col})", file.runtime_path)
        }
        Lang::Ruby => {
            let c = cls.map_or(String::new(), |c| format!("{c}#"));
            format!("{}:{line}:in '{c}{func}'", file.runtime_path)
        }
        Lang::CSharp => {
            let c = cls.unwrap_or("Program");
            format!(
                "   at {}.{c}.{func}(Order order) in {}:line {line}",
                file.module, file.runtime_path
            )
        }
    };
    Frame { text }
}

/// `n` library/framework frames of the language, innermost first (`deep`:
/// the frames of a library called *from* app code, e.g. an ORM or JSON
/// mapper; otherwise the web framework frames below the handler).
pub(super) fn lib_frames(lang: Lang, n: usize, deep: bool, rng: &mut Rng) -> Vec<Frame> {
    let pool: &[&str] = match (lang, deep) {
        (Lang::Python, true) => &[
            "  File \"/usr/local/lib/python3.11/site-packages/sqlalchemy/orm/session.py\", line 2238, in execute\n    return self._execute_internal(",
            "  File \"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 1412, in execute\n    return meth(",
            "  File \"/usr/local/lib/python3.11/site-packages/sqlalchemy/sql/elements.py\", line 515, in _execute_on_connection\n    return connection._execute_clauseelement(",
            "  File \"/usr/local/lib/python3.11/json/__init__.py\", line 346, in loads\n    return _default_decoder.decode(s)",
            "  File \"/usr/local/lib/python3.11/json/decoder.py\", line 337, in decode\n    obj, end = self.raw_decode(s, idx=_w(s, 0).end())",
            "  File \"/usr/local/lib/python3.11/site-packages/pydantic/main.py\", line 164, in __init__\n    __pydantic_self__.__pydantic_validator__.validate_python(data, self_instance=self)",
            "  File \"/usr/local/lib/python3.11/decimal.py\", line 512, in quantize",
            "  File \"/usr/local/lib/python3.11/site-packages/requests/api.py\", line 73, in get\n    return request(\"get\", url, params=params, **kwargs)",
        ],
        (Lang::Python, false) => &[
            "  File \"/usr/local/lib/python3.11/site-packages/flask/app.py\", line 1484, in full_dispatch_request\n    rv = self.dispatch_request()",
            "  File \"/usr/local/lib/python3.11/site-packages/flask/app.py\", line 1469, in dispatch_request\n    return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)",
            "  File \"/usr/local/lib/python3.11/site-packages/flask/app.py\", line 2190, in wsgi_app\n    response = self.full_dispatch_request()",
            "  File \"/usr/local/lib/python3.11/site-packages/gunicorn/workers/sync.py\", line 135, in handle\n    self.handle_request(listener, req, client, addr)",
        ],
        (Lang::Java | Lang::Kotlin, true) => &[
            "\tat com.fasterxml.jackson.databind.deser.BeanDeserializer.deserializeFromObject(BeanDeserializer.java:392)",
            "\tat com.fasterxml.jackson.databind.ObjectMapper._readMapAndClose(ObjectMapper.java:4825)",
            "\tat java.base/java.util.HashMap.computeIfAbsent(HashMap.java:1228)",
            "\tat java.base/java.util.stream.ReferencePipeline$3$1.accept(ReferencePipeline.java:197)",
            "\tat java.base/java.util.ArrayList$ArrayListSpliterator.forEachRemaining(ArrayList.java:1625)",
            "\tat java.base/java.util.stream.AbstractPipeline.copyInto(AbstractPipeline.java:509)",
            "\tat java.base/java.util.stream.ReduceOps$ReduceOp.evaluateSequential(ReduceOps.java:921)",
            "\tat org.hibernate.internal.SessionImpl.find(SessionImpl.java:2445)",
            "\tat jdk.internal.reflect.GeneratedMethodAccessor412.invoke(Unknown Source)",
            "\tat java.base/java.math.BigDecimal.divide(BigDecimal.java:1780)",
        ],
        (Lang::Java | Lang::Kotlin, false) => &[
            "\tat org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)",
            "\tat org.springframework.web.servlet.mvc.method.annotation.ServletInvocableHandlerMethod.invokeAndHandle(ServletInvocableHandlerMethod.java:118)",
            "\tat org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1072)",
            "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
            "\tat jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
            "\tat org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
            "\tat org.apache.tomcat.util.threads.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1191)",
            "\tat java.base/java.lang.Thread.run(Thread.java:833)",
        ],
        (Lang::Go, true) => &[
            "encoding/json.(*decodeState).object(0xc0001a2000, {0x9a3b20, 0xc0002b8010, 0x196})\n\t/usr/local/go/src/encoding/json/decode.go:642 +0x5d0",
            "database/sql.(*DB).QueryContext(0xc000132d00, {0xb1c5a8, 0xc00028a0f0}, {0xa0e2f1, 0x2f}, {0xc0001cdc40, 0x1, 0x1})\n\t/usr/local/go/src/database/sql/sql.go:1731 +0xc5",
            "github.com/jackc/pgx/v5.(*Conn).Query(0xc0001f6000, {0xb1c5a8, 0xc00028a0f0}, {0xa0e2f1, 0x2f})\n\t/go/pkg/mod/github.com/jackc/pgx/v5@v5.5.0/conn.go:737 +0x2b6",
            "strconv.ParseFloat({0xc00012e0a0, 0x4}, 0x40)\n\t/usr/local/go/src/strconv/atof.go:689 +0x45",
        ],
        (Lang::Go, false) => &[
            "net/http.HandlerFunc.ServeHTTP(0xc0001b4000?, {0xb1a7e0?, 0xc0002c6000?}, 0xc000112e00?)\n\t/usr/local/go/src/net/http/server.go:2136 +0x29",
            "github.com/go-chi/chi/v5.(*Mux).routeHTTP(0xc0000c4060, {0xb1a7e0, 0xc0002c6000}, 0xc000112e00)\n\t/go/pkg/mod/github.com/go-chi/chi/v5@v5.0.10/mux.go:444 +0x216",
            "net/http.serverHandler.ServeHTTP({0xc0001e2030?}, {0xb1a7e0?, 0xc0002c6000?}, 0x6?)\n\t/usr/local/go/src/net/http/server.go:2938 +0x8e",
            "net/http.(*conn).serve(0xc0001f8000, {0xb1c5a8, 0xc0001d4e40})\n\t/usr/local/go/src/net/http/server.go:2009 +0x5f4",
            "created by net/http.(*Server).Serve in goroutine 1\n\t/usr/local/go/src/net/http/server.go:3086 +0x5cb",
        ],
        (Lang::Node | Lang::TypeScript, true) => &[
            "    at JSON.parse (<anonymous>)",
            "    at Array.map (<anonymous>)",
            "    at Object.toFixed (/app/node_modules/decimal.js/decimal.js:4012:11)",
            "    at Query.handleRowDescription (/app/node_modules/pg/lib/query.js:87:12)",
            "    at Client._handleRowDescription (/app/node_modules/pg/lib/client.js:364:22)",
            "    at Parser.parse (/app/node_modules/pg-protocol/dist/parser.js:40:17)",
        ],
        (Lang::Node | Lang::TypeScript, false) => &[
            "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
            "    at next (/app/node_modules/express/lib/router/route.js:144:13)",
            "    at Route.dispatch (/app/node_modules/express/lib/router/route.js:114:3)",
            "    at /app/node_modules/express/lib/router/index.js:284:15",
            "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
        ],
        (Lang::Ruby, true) => &[
            "/usr/local/bundle/gems/activerecord-7.1.2/lib/active_record/relation/finder_methods.rb:419:in 'ActiveRecord::FinderMethods#find_one'",
            "/usr/local/bundle/gems/activerecord-7.1.2/lib/active_record/core.rb:268:in 'ActiveRecord::Core::ClassMethods#find'",
            "/usr/local/lib/ruby/3.3.0/json/common.rb:219:in 'JSON::Ext::Parser#parse'",
            "/usr/local/bundle/gems/activesupport-7.1.2/lib/active_support/core_ext/object/try.rb:15:in 'Delegator#try'",
        ],
        (Lang::Ruby, false) => &[
            "/usr/local/bundle/gems/actionpack-7.1.2/lib/action_controller/metal/basic_implicit_render.rb:6:in 'ActionController::BasicImplicitRender#send_action'",
            "/usr/local/bundle/gems/actionpack-7.1.2/lib/abstract_controller/base.rb:224:in 'AbstractController::Base#process_action'",
            "/usr/local/bundle/gems/actionpack-7.1.2/lib/action_controller/metal/rendering.rb:165:in 'ActionController::Rendering#process_action'",
            "/usr/local/bundle/gems/puma-6.4.0/lib/puma/thread_pool.rb:155:in 'block in Puma::ThreadPool#spawn_thread'",
        ],
        (Lang::CSharp, true) => &[
            "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
            "   at System.Linq.Enumerable.First[TSource](IEnumerable`1 source)",
            "   at System.Text.Json.JsonSerializer.Deserialize[TValue](String json, JsonSerializerOptions options)",
            "   at Microsoft.EntityFrameworkCore.Query.Internal.SingleQueryingEnumerable`1.Enumerator.MoveNext()",
            "   at System.Decimal.Round(Decimal d, Int32 decimals)",
        ],
        (Lang::CSharp, false) => &[
            "   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.SyncObjectResultExecutor.Execute(IActionResultTypeMapper mapper, ObjectMethodExecutor executor, Object controller, Object[] arguments)",
            "   at Microsoft.AspNetCore.Mvc.Infrastructure.ControllerActionInvoker.InvokeActionMethodAsync()",
            "   at Microsoft.AspNetCore.Mvc.Infrastructure.ControllerActionInvoker.Next(State& next, Scope& scope, Object& state, Boolean& isCompleted)",
            "   at Microsoft.AspNetCore.Routing.EndpointMiddleware.Invoke(HttpContext httpContext)",
            "   at Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Http.HttpProtocol.ProcessRequests[TContext](IHttpApplication`1 application)",
        ],
    };
    let start = rng.below(pool.len());
    (0..n)
        .map(|i| Frame {
            text: pool[(start + i) % pool.len()].to_owned(),
        })
        .collect()
}

/// An exception: type and message (the message may hold ids).
#[derive(Debug, Clone)]
pub(super) struct Exc {
    pub(super) ty: String,
    pub(super) msg: String,
}

/// Renders a stack, frames innermost first, in the language's format;
/// `cause` adds a JVM `Caused by:` chain or a .NET inner exception.
pub(super) fn render_stack(
    lang: Lang,
    exc: &Exc,
    frames: &[Frame],
    cause: Option<(&Exc, &[Frame])>,
) -> String {
    let mut s = String::new();
    match lang {
        Lang::Python => {
            if let Some((c, cf)) = cause {
                s.push_str("Traceback (most recent call last):\n");
                for f in cf.iter().rev() {
                    s.push_str(&f.text);
                    s.push('\n');
                }
                s.push_str(&format!("{}: {}\n\nDuring handling of the above exception, another exception occurred:\n\n", c.ty, c.msg));
            }
            s.push_str("Traceback (most recent call last):\n");
            for f in frames.iter().rev() {
                s.push_str(&f.text);
                s.push('\n');
            }
            s.push_str(&format!("{}: {}", exc.ty, exc.msg));
        }
        Lang::Java | Lang::Kotlin => {
            s.push_str(&format!("{}: {}", exc.ty, exc.msg));
            for f in frames {
                s.push('\n');
                s.push_str(&f.text);
            }
            if let Some((c, cf)) = cause {
                s.push_str(&format!("\nCaused by: {}: {}", c.ty, c.msg));
                for f in cf {
                    s.push('\n');
                    s.push_str(&f.text);
                }
                s.push_str(&format!("\n\t... {} more", frames.len().saturating_sub(1)));
            }
        }
        Lang::Go => {
            s.push_str(&format!(
                "panic: {}\n\ngoroutine {} [running]:",
                exc.msg,
                20 + exc.msg.len() % 400
            ));
            for f in frames {
                s.push('\n');
                s.push_str(&f.text);
            }
        }
        Lang::Node | Lang::TypeScript => {
            s.push_str(&format!("{}: {}", exc.ty, exc.msg));
            for f in frames {
                s.push('\n');
                s.push_str(&f.text);
            }
            if let Some((c, cf)) = cause {
                s.push_str(&format!("\n  [cause]: {}: {}", c.ty, c.msg));
                for f in cf {
                    s.push('\n');
                    s.push_str(&f.text);
                }
            }
        }
        Lang::Ruby => {
            let mut it = frames.iter();
            if let Some(first) = it.next() {
                s.push_str(&format!("{}: {} ({})", first.text, exc.msg, exc.ty));
            }
            for f in it {
                s.push_str("\n\tfrom ");
                s.push_str(&f.text);
            }
        }
        Lang::CSharp => {
            s.push_str(&format!("{}: {}", exc.ty, exc.msg));
            if let Some((c, cf)) = cause {
                s.push_str(&format!("\n ---> {}: {}", c.ty, c.msg));
                for f in cf {
                    s.push('\n');
                    s.push_str(&f.text);
                }
                s.push_str("\n   --- End of inner exception stack trace ---");
            }
            for f in frames {
                s.push('\n');
                s.push_str(&f.text);
            }
        }
    }
    s
}

/// The log message for an exception, as the language's loggers print it.
pub(super) fn message(lang: Lang, exc: &Exc) -> String {
    match lang {
        Lang::Ruby => format!("{} ({})", exc.msg, exc.ty),
        Lang::Go => exc.msg.clone(),
        _ => format!("{}: {}", exc.ty, exc.msg),
    }
}

/// A crash-type bug exception naming `ident` (a field or key of the code).
pub(super) fn bug_exception(lang: Lang, ident: &str, rng: &mut Rng) -> Exc {
    let id = rng.int(10_000, 999_999);
    let p = pascal(&[ident]);
    let (ty, msg) = match lang {
        Lang::Python => match rng.below(4) {
            0 => ("KeyError", format!("'{ident}'")),
            1 => ("AttributeError", format!("'NoneType' object has no attribute '{ident}'")),
            2 => ("TypeError", format!("unsupported operand type(s) for *: 'NoneType' and 'Decimal' (order_id={id})")),
            _ => ("ValueError", format!("invalid literal for int() with base 10: '{ident}-{id}'")),
        },
        Lang::Java | Lang::Kotlin => match rng.below(4) {
            0 => ("java.lang.NullPointerException", format!("Cannot invoke \"com.shop.model.{p}.getAmount()\" because \"{ident}\" is null")),
            1 => ("java.lang.IndexOutOfBoundsException", format!("Index {} out of bounds for length {}", 1 + id % 4, 1 + id % 4)),
            2 => ("java.lang.ArithmeticException", "/ by zero".to_owned()),
            _ => ("java.lang.IllegalStateException", format!("{p} not initialized for order {id}")),
        },
        Lang::Go => match rng.below(3) {
            0 => ("runtime.Error", "runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8a4b2c]".to_owned()),
            1 => ("runtime.Error", format!("runtime error: index out of range [{}] with length {}", 1 + id % 4, 1 + id % 4)),
            _ => ("runtime.Error", format!("assignment to entry in nil map ({ident})")),
        },
        Lang::Node | Lang::TypeScript => match rng.below(3) {
            0 => ("TypeError", format!("Cannot read properties of undefined (reading '{ident}')")),
            1 => ("TypeError", format!("{ident}.map is not a function")),
            _ => ("RangeError", "toFixed() digits argument must be between 0 and 100".to_owned()),
        },
        Lang::Ruby => match rng.below(3) {
            0 => ("NoMethodError", format!("undefined method '{ident}' for nil")),
            1 => ("KeyError", format!("key not found: :{ident}")),
            _ => ("TypeError", "nil can't be coerced into BigDecimal".to_owned()),
        },
        Lang::CSharp => match rng.below(3) {
            0 => ("System.NullReferenceException", "Object reference not set to an instance of an object.".to_owned()),
            1 => ("System.InvalidOperationException", "Sequence contains no elements".to_owned()),
            _ => ("System.Collections.Generic.KeyNotFoundException", format!("The given key '{ident}' was not present in the dictionary.")),
        },
    };
    Exc {
        ty: ty.to_owned(),
        msg,
    }
}

/// An exception a validation or assertion far from the change raises when
/// handed a wrong value (`ident`: what it checks).
pub(super) fn wrong_value_exception(lang: Lang, ident: &str, rng: &mut Rng) -> Exc {
    let v = -(rng.int(1, 99_999) as f64) / 100.0;
    let id = rng.int(10_000, 999_999);
    let (ty, msg) = match lang {
        Lang::Python => (
            "AssertionError",
            format!("{ident} must be non-negative, got {v:.2} (order_id={id})"),
        ),
        Lang::Java | Lang::Kotlin => (
            "java.lang.IllegalArgumentException",
            format!("{ident} must be >= 0 but was {v:.2}"),
        ),
        Lang::Go => (
            "error",
            format!("invariant violated: {ident} < 0 (got {v:.2}) for order {id}"),
        ),
        Lang::Node | Lang::TypeScript => (
            "AssertionError [ERR_ASSERTION]",
            format!("{ident} must be non-negative: {v:.2}"),
        ),
        Lang::Ruby => (
            "ArgumentError",
            format!("{ident} must be positive, got {v:.2}"),
        ),
        Lang::CSharp => (
            "System.ArgumentOutOfRangeException",
            format!(
                "{} must be non-negative. (Parameter '{ident}')\nActual value was {v:.2}.",
                pascal(&[ident])
            ),
        ),
    };
    Exc {
        ty: ty.to_owned(),
        msg,
    }
}

/// A background (baseline) error of the language, raised in app code; the
/// message holds `{id}` and `{n}` placeholders filled per line ([`fill`]).
pub(super) fn background_exception(lang: Lang, ident: &str, rng: &mut Rng) -> Exc {
    let (ty, msg) = match (lang.is_jvm(), lang, rng.below(4)) {
        (_, _, 0) => ("LockTimeoutError", format!("Failed to acquire lock {ident}-{{id}} after {{n}} retries")),
        (_, _, 1) => ("ValidationError", format!("{ident} {{id}} rejected: invalid state transition (attempt {{n}})")),
        (true, _, _) => ("org.springframework.dao.OptimisticLockingFailureException", format!("Row was updated or deleted by another transaction: {ident} #{{n}}")),
        (_, Lang::Python, _) => ("sqlalchemy.exc.OperationalError", format!("(psycopg2.errors.LockNotAvailable) could not obtain lock on row in relation \"{ident}s\" id={{n}}")),
        (_, Lang::CSharp, _) => ("Microsoft.EntityFrameworkCore.DbUpdateConcurrencyException", format!("The database operation was expected to affect 1 row(s), but actually affected 0 row(s); {ident} {{id}}")),
        (_, Lang::Ruby, _) => ("ActiveRecord::StaleObjectError", format!("Attempted to update a stale object: {} {{n}}", pascal(&[ident]))),
        _ => ("Error", format!("{ident} {{id}} cache miss storm: {{n}} keys reloaded")),
    };
    Exc {
        ty: ty.to_owned(),
        msg,
    }
}

/// Fills `{id}` (hex) and `{n}` (a count) placeholders.
pub(super) fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{id}") {
            out.push_str(&rng.hex(8));
            rest = t;
        } else if let Some(t) = tail.strip_prefix("{n}") {
            out.push_str(&rng.int(2, 9000).to_string());
            rest = t;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A mutation of one line of code: the same statement with a changed value,
/// operator or argument (what a one-line bug fix or bug looks like).
pub(super) fn mutate(line: &str, lang: Lang, rng: &mut Rng) -> String {
    if let Some(i) = line.find(|c: char| c.is_ascii_digit()) {
        let j = line[i..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(line.len(), |j| i + j);
        let n: i64 = line[i..j].parse().unwrap_or(1);
        let m = *rng.pick(&[n * 10, n / 10 + 1, n + 1, 100 - n.min(99), 0]);
        return format!("{}{m}{}", &line[..i], &line[j..]);
    }
    if let Some(i) = line.rfind(')') {
        let arg = match lang {
            Lang::Python => ", strict=True",
            Lang::Ruby => ", strict: true",
            Lang::Go => ", opts...",
            Lang::CSharp => ", cancellationToken",
            _ => ", true",
        };
        if line[..i].ends_with('(') {
            return format!("{}{}{}", &line[..i], &arg[2..], &line[i..]);
        }
        return format!("{}{arg}{}", &line[..i], &line[i..]);
    }
    if line.contains(" * ") {
        return line.replacen(" * ", " / ", 1);
    }
    if line.contains(" += ") {
        return line.replacen(" += ", " -= ", 1);
    }
    let c = match lang {
        Lang::Python | Lang::Ruby => "# TODO: revisit",
        _ => "// TODO: revisit",
    };
    format!("{line}  {c}")
}

/// A new statement to insert before a line (same indentation as `like`).
pub(super) fn new_statement(like: &str, lang: Lang, rng: &mut Rng) -> String {
    let ind: String = like.chars().take_while(|c| c.is_whitespace()).collect();
    let ids = Ids { lang };
    let first = statement(lang, &ids, rng)
        .into_iter()
        .next()
        .unwrap_or_default();
    // Multi-line statements: take a one-liner (assignment) instead.
    let one = if first.ends_with(':') || first.ends_with('{') || first.starts_with("for") {
        match lang {
            Lang::Python | Lang::Ruby => format!("{} = {}", ids.var2(rng), ids.var(rng)),
            Lang::Go => format!("{} := {}", ids.var2(rng), ids.var(rng)),
            Lang::Kotlin => format!("val {} = {}", ids.var2(rng), ids.var(rng)),
            Lang::Node | Lang::TypeScript => format!("const {} = {};", ids.var2(rng), ids.var(rng)),
            _ => format!("var {} = {};", ids.var2(rng), ids.var(rng)),
        }
    } else {
        first
    };
    format!("{ind}{one}")
}

/// Git's default function-name rule for a hunk header: the nearest line
/// before `before` (1-based, exclusive) starting with a letter, `_` or `$`,
/// cut to 80 bytes.
pub(super) fn git_funcname(lines: &[String], before: u32) -> String {
    for l in lines[..(before as usize).saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
    {
        if l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$') {
            let t = l.trim_end();
            let mut end = t.len().min(80);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            return t[..end].to_owned();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_have_long_functions_and_git_headers_name_the_class() {
        let mut rng = Rng(5);
        for lang in LANGS {
            let f = gen_file(
                &mut rng,
                lang,
                "src/x".into(),
                "/app/src/x".into(),
                "com.shop.x".into(),
                Some("PriceService".into()),
            );
            assert!(
                f.funcs.iter().any(|g| g.last_line - g.def_line >= 45),
                "{lang:?}"
            );
            let g = &f.funcs[1];
            assert!(f.func_at(g.def_line + 2) == Some(1));
            // A hunk inside a method of a class: git names the class (or,
            // for Go, the top-level func).
            let h = git_funcname(&f.lines, g.def_line + 4);
            match lang {
                Lang::Go => assert!(h.starts_with("func "), "{h}"),
                Lang::Python => assert_eq!(h, "class PriceService:"),
                Lang::CSharp | Lang::Ruby => assert!(h.contains("class PriceService"), "{h}"),
                _ => assert!(h.contains("class PriceService"), "{lang:?} {h}"),
            }
        }
    }

    #[test]
    fn splice_shifts_later_functions() {
        let mut rng = Rng(9);
        let mut f = gen_file(
            &mut rng,
            Lang::Python,
            "a.py".into(),
            "/app/a.py".into(),
            "a".into(),
            None,
        );
        let (d0, d1) = (f.funcs[0].def_line, f.funcs[1].def_line);
        f.splice(d0 + 1, 1, &["    x = 1".into(), "    y = 2".into()]);
        assert_eq!(f.funcs[0].def_line, d0);
        assert_eq!(f.funcs[1].def_line, d1 + 1);
        assert_eq!(f.line(d0 + 2), "    y = 2");
    }
}
