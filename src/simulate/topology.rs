//! The fleet: services (each in one language, with a small repository of
//! source files), the upstreams they call (a dependency graph: each service
//! calls 1–3 of them), and the code sites where background errors and
//! upstream calls live. Names, sizes and rates are drawn per seed.

use super::lang::{self, Lang, SourceFile, LANGS};
use super::rng::Rng;

const SERVICE_NAMES: [&str; 40] = [
    "checkout",
    "cart",
    "search",
    "catalog",
    "orders",
    "billing",
    "shipping",
    "returns",
    "reviews",
    "wishlist",
    "loyalty",
    "notifications",
    "accounts",
    "profile",
    "recommendations",
    "pricing",
    "promotions",
    "fulfillment",
    "warehouse",
    "invoicing",
    "subscriptions",
    "gift-cards",
    "storefront",
    "admin-console",
    "reporting",
    "webhooks",
    "partner-api",
    "mobile-bff",
    "media",
    "sitemap",
    "tax-engine",
    "fraud-review",
    "support-desk",
    "onboarding",
    "coupons",
    "bundles",
    "marketplace",
    "quotes",
    "ledger-sync",
    "exports",
];

const UPSTREAM_NAMES: [(&str, UpKind, u16); 24] = [
    ("payments-api", UpKind::Http, 443),
    ("geo-lookup", UpKind::Grpc, 50051),
    ("mailer", UpKind::Http, 8025),
    ("inventory-db", UpKind::Db, 5432),
    ("auth", UpKind::Http, 443),
    ("fx-rates", UpKind::Http, 8080),
    ("session-cache", UpKind::Cache, 6379),
    ("search-index", UpKind::Http, 9200),
    ("ledger", UpKind::Grpc, 50051),
    ("fraud-score", UpKind::Grpc, 9090),
    ("blob-store", UpKind::Http, 9000),
    ("orders-db", UpKind::Db, 5432),
    ("user-profile", UpKind::Grpc, 50051),
    ("tax-calc", UpKind::Http, 8080),
    ("shipping-quotes", UpKind::Http, 443),
    ("sms-gateway", UpKind::Http, 443),
    ("feature-flags", UpKind::Http, 8080),
    ("catalog-db", UpKind::Db, 3306),
    ("rate-limiter", UpKind::Cache, 6379),
    ("address-verify", UpKind::Http, 443),
    ("loyalty-points", UpKind::Grpc, 50051),
    ("recs-model", UpKind::Http, 8501),
    ("kafka-rest", UpKind::Http, 8082),
    ("identity-provider", UpKind::Http, 443),
];

/// What an upstream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpKind {
    Http,
    Grpc,
    Db,
    Cache,
}

/// A dependency outside the fleet's services.
#[derive(Debug, Clone)]
pub(super) struct Upstream {
    pub(super) name: String,
    pub(super) kind: UpKind,
    pub(super) port: u16,
    /// How most callers word its failures (index into [`upstream_error`]'s styles).
    pub(super) style: usize,
}

/// A place in a service's code: file index and line (current revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Site {
    pub(super) file: usize,
    pub(super) line: u32,
}

/// A service's code at one revision: its files and the sites pointing into
/// them (kept in step when a deploy edits the files).
#[derive(Debug, Clone)]
pub(super) struct Code {
    pub(super) files: Vec<SourceFile>,
    pub(super) sites: Vec<Site>,
}

impl Code {
    /// Edits `file`: `remove` lines from `at` replaced by `insert`; sites
    /// after the edit move with their lines.
    pub(super) fn splice(&mut self, file: usize, at: u32, remove: usize, insert: &[String]) {
        self.files[file].splice(at, remove, insert);
        let delta = insert.len() as i64 - remove as i64;
        for s in &mut self.sites {
            if s.file == file && s.line >= at + remove as u32 {
                s.line = (i64::from(s.line) + delta) as u32;
            }
        }
    }

    /// The function name around a site.
    pub(super) fn func_name(&self, s: Site) -> String {
        let f = &self.files[s.file];
        f.func_at(s.line)
            .map_or_else(|| "<module>".to_owned(), |i| f.funcs[i].name.clone())
    }
}

/// A call from a service to an upstream.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) upstream: usize,
    /// Share of the service's requests that call it.
    pub(super) share: f64,
    /// Failure wording (see [`upstream_error`]).
    pub(super) style: usize,
    /// Whether its errors are logged with a stack.
    pub(super) stacked: bool,
    /// Background failure rate per call.
    pub(super) base_rate: f64,
    /// Index into [`Code::sites`] of the call site.
    pub(super) site: usize,
}

/// A background error signature of a service.
#[derive(Debug, Clone)]
pub(super) struct BaseSig {
    /// Index into [`Code::sites`] of the raising line.
    pub(super) site: usize,
    /// Exception type (fixed per signature).
    pub(super) exc_ty: String,
    /// Message template; `{id}` and `{n}` are filled per line.
    pub(super) template: String,
    /// Errors per request.
    pub(super) rate: f64,
    /// Gamma shape of the hourly multiplier (smaller: burstier).
    pub(super) shape: f64,
    /// Whether lines carry a stack.
    pub(super) stacked: bool,
}

/// How late a service's shipper delivers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lateness {
    /// Records arrive up to this many ms after their time, shuffled.
    pub(super) jitter_ms: i64,
    /// Probability per minute that the minute's batch is held 5–20 minutes.
    pub(super) batch_delay_p: f64,
}

/// One service of the fleet.
#[derive(Debug, Clone)]
pub(super) struct Service {
    pub(super) name: String,
    pub(super) lang: Lang,
    pub(super) base_rpm: f64,
    pub(super) phase: f64,
    pub(super) calls: Vec<Call>,
    pub(super) sigs: Vec<BaseSig>,
    pub(super) late: Option<Lateness>,
    /// The repository's config file (YAML) and its lines.
    pub(super) config: (String, Vec<String>),
    /// The dependency manifest and its lines.
    pub(super) manifest: (String, Vec<String>),
    /// The code at the first revision.
    pub(super) code: Code,
}

/// The fleet and its upstreams.
#[derive(Debug, Clone)]
pub(super) struct Fleet {
    pub(super) services: Vec<Service>,
    pub(super) upstreams: Vec<Upstream>,
}

const MODULES: [&str; 12] = [
    "pricing",
    "cart",
    "orders",
    "payments",
    "catalog",
    "shipping",
    "accounts",
    "tax",
    "inventory",
    "promotions",
    "api",
    "checkout",
];

/// Draws a fleet of `n` services.
pub(super) fn fleet(rng: &mut Rng, n: usize) -> Fleet {
    let mut ups: Vec<usize> = (0..UPSTREAM_NAMES.len()).collect();
    rng.shuffle(&mut ups);
    let n_up = (6 + rng.below(7)).min(ups.len());
    let upstreams: Vec<Upstream> = ups[..n_up]
        .iter()
        .map(|&i| {
            let (name, kind, port) = UPSTREAM_NAMES[i];
            Upstream {
                name: name.to_owned(),
                kind,
                port,
                style: rng.below(STYLES),
            }
        })
        .collect();
    // Some upstreams are popular (called by many), some by one service only.
    let weights: Vec<f64> = (0..n_up).map(|_| rng.log_range(0.2, 5.0)).collect();
    let mut names: Vec<usize> = (0..SERVICE_NAMES.len()).collect();
    rng.shuffle(&mut names);
    let org = *rng.pick(&["shop", "acme", "initech", "globex", "umbrella"]);
    let services = (0..n)
        .map(|i| {
            let name = if i < names.len() {
                SERVICE_NAMES[names[i]].to_owned()
            } else {
                format!(
                    "{}-{}",
                    SERVICE_NAMES[names[i % names.len()]],
                    i / names.len() + 1
                )
            };
            service(rng, name, org, &upstreams, &weights)
        })
        .collect();
    Fleet {
        services,
        upstreams,
    }
}

fn pick_weighted(rng: &mut Rng, w: &[f64], exclude: &[usize]) -> usize {
    let total: f64 = w
        .iter()
        .enumerate()
        .filter(|(i, _)| !exclude.contains(i))
        .map(|(_, x)| x)
        .sum();
    let mut u = rng.uniform() * total;
    for (i, x) in w.iter().enumerate() {
        if exclude.contains(&i) {
            continue;
        }
        u -= x;
        if u <= 0.0 {
            return i;
        }
    }
    (0..w.len()).find(|i| !exclude.contains(i)).unwrap_or(0)
}

fn service(
    rng: &mut Rng,
    name: String,
    org: &str,
    upstreams: &[Upstream],
    weights: &[f64],
) -> Service {
    let lang = *rng.pick(&LANGS);
    let pkg = name.replace('-', "_");
    let n_files = 3 + rng.below(4);
    let mut mods: Vec<&str> = MODULES.to_vec();
    rng.shuffle(&mut mods);
    // JVM repositories: the package frames print need not mirror the path.
    let jvm_layout = rng.below(3);
    let repo = Repo {
        lang,
        name: &name,
        org,
        pkg: &pkg,
        jvm_layout,
    };
    let files: Vec<SourceFile> = (0..n_files)
        .map(|i| repo.source_file(rng, mods[i % mods.len()]))
        .collect();
    let mut code = Code {
        files,
        sites: Vec::new(),
    };
    let calls = draw_calls(rng, upstreams, weights, &mut code);
    let sigs = draw_sigs(rng, lang, &mut code);
    let late = rng.chance(0.25).then(|| Lateness {
        jitter_ms: rng.int(20_000, 180_000),
        batch_delay_p: rng.range(0.0, 0.05),
    });
    Service {
        config: config_file(rng, lang, &calls, upstreams),
        manifest: manifest(lang, rng),
        name,
        lang,
        base_rpm: rng.log_range(80.0, 5000.0),
        phase: rng.uniform(),
        calls,
        sigs,
        late,
        code,
    }
}

/// How a service's repository lays out its files.
struct Repo<'a> {
    lang: Lang,
    name: &'a str,
    org: &'a str,
    /// The service name as a package (`order_api`).
    pkg: &'a str,
    /// JVM only: 0 mirrors the package, 1 a flat `src/<module>`, 2 a `-core` module.
    jvm_layout: usize,
}

impl Repo<'_> {
    /// The source file of module `m`, at its language's usual path, with the
    /// path its frames print.
    fn source_file(&self, rng: &mut Rng, m: &str) -> SourceFile {
        let Repo {
            lang,
            name,
            org,
            pkg,
            jvm_layout,
        } = *self;
        let noun = m.trim_end_matches('s');
        let class = lang::class_name(rng, noun);
        match lang {
            Lang::Python => {
                let file = format!(
                    "{}.py",
                    rng.pick(&[
                        "service", "handlers", "models", "pricing", "client", "views", "tasks"
                    ])
                );
                let path = format!("src/{pkg}/{m}/{file}");
                let runtime = if rng.chance(0.3) {
                    format!("/usr/local/lib/python3.11/site-packages/{pkg}/{m}/{file}")
                } else {
                    format!("/app/{path}")
                };
                let cls = rng.chance(0.5).then(|| class.clone());
                lang::gen_file(rng, lang, path, runtime, format!("{pkg}.{m}"), cls)
            }
            Lang::Java | Lang::Kotlin => {
                let ext = if lang == Lang::Java { "java" } else { "kt" };
                let pkgname = format!("com.{org}.{}.{m}", pkg.replace('_', ""));
                let src = if ext == "java" { "java" } else { "kotlin" };
                let path = match jvm_layout {
                    0 => format!("src/main/{src}/{}/{class}.{ext}", pkgname.replace('.', "/")),
                    1 => format!("src/{m}/{class}.{ext}"),
                    _ => format!(
                        "{}-core/src/main/{src}/com/{org}/{m}/{class}.{ext}",
                        pkg.replace('_', "-")
                    ),
                };
                lang::gen_file(rng, lang, path.clone(), path, pkgname, Some(class))
            }
            Lang::Go => {
                let path = format!("internal/{m}/{m}.go");
                let runtime = if rng.chance(0.5) {
                    format!("/build/{path}")
                } else {
                    format!("/go/src/github.com/{org}/{name}/{path}")
                };
                let cls = rng.chance(0.7).then(|| class.clone());
                let module = format!("github.com/{org}/{name}/internal/{m}");
                lang::gen_file(rng, lang, path, runtime, module, cls)
            }
            Lang::Node | Lang::TypeScript => {
                let ext = if lang == Lang::Node { "js" } else { "ts" };
                let path = format!(
                    "src/{m}/{}.{ext}",
                    rng.pick(&["index", "service", "handler", "client", "quote"])
                );
                let runtime = if lang == Lang::TypeScript && rng.chance(0.3) {
                    format!("webpack:///./{path}")
                } else {
                    format!("/app/{path}")
                };
                let cls = rng.chance(0.5).then(|| class.clone());
                lang::gen_file(rng, lang, path, runtime, m.to_owned(), cls)
            }
            Lang::Ruby => {
                let path = format!("app/services/{m}/{noun}_service.rb");
                let runtime = if rng.chance(0.5) {
                    format!("/app/{path}")
                } else {
                    path.clone()
                };
                lang::gen_file(rng, lang, path, runtime, m.to_owned(), Some(class))
            }
            Lang::CSharp => {
                let proj = format!("{}.{}", pascal1(pkg), pascal1(m));
                let path = format!("src/{proj}/{class}.cs");
                let runtime = format!("/{path}");
                lang::gen_file(rng, lang, path, runtime, proj, Some(class))
            }
        }
    }
}

/// The service's calls to 1–3 upstreams (popular ones more likely), each
/// from a site in `code`.
fn draw_calls(
    rng: &mut Rng,
    upstreams: &[Upstream],
    weights: &[f64],
    code: &mut Code,
) -> Vec<Call> {
    let n_calls = 1 + rng.below(3);
    let mut called = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..n_calls.min(upstreams.len()) {
        let u = pick_weighted(rng, weights, &called);
        called.push(u);
        let style = if rng.chance(0.5) {
            upstreams[u].style
        } else {
            rng.below(STYLES)
        };
        calls.push(Call {
            upstream: u,
            share: rng.range(0.15, 1.0),
            style,
            stacked: rng.chance(0.5),
            base_rate: if rng.chance(0.5) {
                rng.log_range(1e-5, 3e-4)
            } else {
                0.0
            },
            site: site_in(rng, code),
        });
    }
    calls
}

/// The service's 2–6 background error signatures, each raised at a site in
/// `code`.
fn draw_sigs(rng: &mut Rng, lang: Lang, code: &mut Code) -> Vec<BaseSig> {
    let n_sigs = 2 + rng.below(5);
    (0..n_sigs)
        .map(|_| {
            let ident = (*rng.pick(&[
                "order", "cart", "session", "invoice", "stock", "coupon", "quote", "refund",
            ]))
            .to_owned();
            let e = lang::background_exception(lang, &ident, rng);
            BaseSig {
                site: site_in(rng, code),
                template: e.msg,
                exc_ty: e.ty,
                rate: 10f64.powf(rng.range(-4.8, -2.8)),
                shape: rng.log_range(0.6, 10.0),
                stacked: rng.chance(0.75),
            }
        })
        .collect()
}

/// A new site on a random body line of a random function.
fn site_in(rng: &mut Rng, code: &mut Code) -> usize {
    let fi = rng.below(code.files.len());
    let f = &code.files[fi];
    let g = &f.funcs[rng.below(f.funcs.len())];
    let line = g.def_line + 1 + rng.below((g.last_line - g.def_line) as usize) as u32;
    code.sites.push(Site { file: fi, line });
    code.sites.len() - 1
}

fn pascal1(s: &str) -> String {
    s.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn config_file(
    rng: &mut Rng,
    lang: Lang,
    calls: &[Call],
    ups: &[Upstream],
) -> (String, Vec<String>) {
    let path = match lang {
        Lang::Java | Lang::Kotlin => "src/main/resources/application.yml",
        Lang::CSharp => "appsettings.Production.json",
        Lang::Ruby => "config/settings/production.yml",
        _ => "config/production.yaml",
    };
    let mut lines = Vec::new();
    if lang == Lang::CSharp {
        lines.push("{".to_owned());
        for c in calls {
            let u = &ups[c.upstream];
            lines.push(format!("  \"{}\": {{", pascal1(&u.name)));
            lines.push(format!(
                "    \"BaseUrl\": \"http://{}:{}\",",
                u.name, u.port
            ));
            lines.push(format!("    \"TimeoutMs\": {},", rng.int(8, 60) * 100));
            lines.push(format!("    \"Retries\": {}", rng.int(1, 4)));
            lines.push("  },".to_owned());
        }
        lines.push("  \"Database\": { \"MaxPoolSize\": 20 },".to_owned());
        lines.push("  \"FeatureFlags\": { \"NewCheckout\": false }".to_owned());
        lines.push("}".to_owned());
    } else {
        lines.push("server:".to_owned());
        lines.push("  port: 8080".to_owned());
        lines.push("  workers: 8".to_owned());
        lines.push("upstreams:".to_owned());
        for c in calls {
            let u = &ups[c.upstream];
            lines.push(format!("  {}:", u.name));
            lines.push(format!("    url: http://{}:{}", u.name, u.port));
            lines.push(format!("    timeout_ms: {}", rng.int(8, 60) * 100));
            lines.push(format!("    retries: {}", rng.int(1, 4)));
        }
        lines.push("database:".to_owned());
        lines.push("  pool_size: 20".to_owned());
        lines.push("  statement_timeout_ms: 5000".to_owned());
        lines.push("features:".to_owned());
        lines.push("  new_checkout: false".to_owned());
        lines.push("  cache_ttl_s: 300".to_owned());
    }
    (path.to_owned(), lines)
}

fn manifest(lang: Lang, _rng: &mut Rng) -> (String, Vec<String>) {
    let (path, lines): (&str, &[&str]) = match lang {
        Lang::Python => ("requirements.txt", &["flask==3.0.0", "requests==2.31.0", "sqlalchemy==2.0.23", "pydantic==2.5.2", "psycopg2-binary==2.9.9", "redis==5.0.1"]),
        Lang::Java => ("pom.xml", &["  <dependencies>", "    <dependency>", "      <groupId>com.fasterxml.jackson.core</groupId>", "      <artifactId>jackson-databind</artifactId>", "      <version>2.15.3</version>", "    </dependency>", "    <dependency>", "      <groupId>org.hibernate.orm</groupId>", "      <artifactId>hibernate-core</artifactId>", "      <version>6.3.1.Final</version>", "    </dependency>", "  </dependencies>"]),
        Lang::Kotlin => ("build.gradle.kts", &["dependencies {", "    implementation(\"org.springframework.boot:spring-boot-starter-web:3.2.0\")", "    implementation(\"com.fasterxml.jackson.module:jackson-module-kotlin:2.15.3\")", "    implementation(\"org.jetbrains.kotlinx:kotlinx-coroutines-core:1.7.3\")", "}"]),
        Lang::Go => ("go.mod", &["module example.com/svc", "", "go 1.21", "", "require (", "\tgithub.com/go-chi/chi/v5 v5.0.10", "\tgithub.com/jackc/pgx/v5 v5.5.0", "\tgoogle.golang.org/grpc v1.59.0", ")"]),
        Lang::Node | Lang::TypeScript => ("package.json", &["{", "  \"dependencies\": {", "    \"express\": \"^4.18.2\",", "    \"pg\": \"^8.11.3\",", "    \"decimal.js\": \"^10.4.3\",", "    \"ioredis\": \"^5.3.2\"", "  }", "}"]),
        Lang::Ruby => ("Gemfile.lock", &["GEM", "  remote: https://rubygems.org/", "  specs:", "    activerecord (7.1.2)", "    faraday (2.7.12)", "    puma (6.4.0)", "    redis (5.0.8)"]),
        Lang::CSharp => ("src/Service.csproj", &["<Project Sdk=\"Microsoft.NET.Sdk.Web\">", "  <ItemGroup>", "    <PackageReference Include=\"Microsoft.EntityFrameworkCore\" Version=\"8.0.0\" />", "    <PackageReference Include=\"Polly\" Version=\"8.2.0\" />", "    <PackageReference Include=\"System.Text.Json\" Version=\"8.0.0\" />", "  </ItemGroup>", "</Project>"]),
    };
    (
        path.to_owned(),
        lines.iter().map(|l| (*l).to_owned()).collect(),
    )
}

/// How many wordings [`upstream_error`] knows.
pub(super) const STYLES: usize = 9;

/// A failure calling `up`, worded by `style` the way `lang`'s clients and
/// proxies word it: `(exception type or "", message)`. Some wordings do not
/// name the upstream at all (an Envoy reset, a refused IP).
pub(super) fn upstream_error(
    style: usize,
    up: &Upstream,
    lang: Lang,
    rng: &mut Rng,
) -> (String, String) {
    let ms = rng.int(1000, 5000) + 1;
    let rid = rng.hex(12);
    let name = &up.name;
    let port = up.port;
    match (up.kind, style) {
        (UpKind::Db, 0..=2) => match lang {
            Lang::Java | Lang::Kotlin => ("java.net.SocketTimeoutException".into(), format!("connect timed out ({name}:{port})")),
            Lang::Python => ("psycopg2.OperationalError".into(), format!("could not connect to server: Connection refused\n\tIs the server running on host \"{name}\" and accepting TCP/IP connections on port {port}?")),
            Lang::Go => (String::new(), format!("failed to connect to `host={name} user=app database=app`: dial error (dial tcp 10.0.{}.{}:{port}: connect: connection refused)", rng.int(0, 9), rng.int(2, 250))),
            Lang::CSharp => ("Npgsql.NpgsqlException".into(), format!("Exception while connecting ({name}:{port})")),
            _ => ("ActiveRecord::ConnectionNotEstablished".into(), format!("connection to server at \"{name}\", port {port} failed: timeout expired")),
        },
        (UpKind::Cache, 0..=2) => match lang {
            Lang::Python => ("redis.exceptions.ConnectionError".into(), format!("Error 111 connecting to {name}:{port}. Connection refused.")),
            Lang::Node | Lang::TypeScript => ("Error".into(), format!("connect ETIMEDOUT {name}:{port}")),
            _ => (String::new(), format!("redis: connection pool timeout ({name}:{port})")),
        },
        (_, 0) => (String::new(), format!("Timeout after {ms}ms calling {name} (request_id={rid})")),
        (_, 1) => (String::new(), format!("rpc error: code = Unavailable desc = {name}: connection refused")),
        (_, 2) => (String::new(), format!("429 Too Many Requests from {name} (retry-after={}s)", rng.int(1, 30))),
        (_, 3) => match lang {
            Lang::Java | Lang::Kotlin => ("java.net.SocketTimeoutException".into(), format!("connect timed out ({name}:{port})")),
            Lang::Python => ("requests.exceptions.ConnectionError".into(), format!("HTTPConnectionPool(host='{name}', port={port}): Max retries exceeded with url: /v1/{} (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f{}>: Failed to establish a new connection: [Errno 111] Connection refused'))", rng.pick(&["quote", "lookup", "send", "verify"]), rng.hex(10))),
            Lang::Node | Lang::TypeScript => ("FetchError".into(), format!("request to http://{name}:{port}/v1/{} failed, reason: socket hang up", rng.pick(&["quote", "lookup", "send"]))),
            Lang::CSharp => ("System.Net.Http.HttpRequestException".into(), format!("Connection refused ({name}:{port})")),
            Lang::Ruby => ("Faraday::TimeoutError".into(), format!("Net::ReadTimeout with #<TCPSocket:(closed)> calling {name}")),
            Lang::Go => (String::new(), format!("Post \"http://{name}:{port}/v1/quote\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")),
        },
        (_, 4) => (String::new(), "upstream connect error or disconnect/reset before headers. reset reason: connection failure".into()),
        (_, 5) => (String::new(), format!("HTTP 503 from {name}: Service Unavailable")),
        (_, 6) => match lang {
            Lang::Node | Lang::TypeScript => ("Error".into(), format!("connect ECONNREFUSED 10.0.{}.{}:{port}", rng.int(0, 9), rng.int(2, 250))),
            _ => (String::new(), format!("dial tcp 10.0.{}.{}:{port}: i/o timeout", rng.int(0, 9), rng.int(2, 250))),
        },
        (_, 7) => match lang {
            Lang::Java | Lang::Kotlin => ("feign.RetryableException".into(), format!("Read timed out executing POST http://{name}/v1/charge")),
            Lang::CSharp => ("Polly.Timeout.TimeoutRejectedException".into(), "The delegate executed asynchronously through TimeoutPolicy did not complete within the timeout.".into()),
            _ => (String::new(), format!("{name} call failed after 3 attempts: deadline exceeded")),
        },
        _ => (String::new(), format!("circuit breaker '{name}' is OPEN; rejecting call")),
    }
}
