//! Stack frames → repository paths (pure).
//!
//! A frame names a file as the *running* process saw it: `/app/src/x.py`
//! inside a container, `/usr/local/lib/python3.12/site-packages/shop/x.py` for
//! an installed package, `webpack:///./src/x.ts` in a bundle, `Pricing.java`
//! (file name only) on the JVM, `/go/src/github.com/shop/api/x.go` for Go. A
//! diff names it as the *repository* does: `src/x.py`,
//! `src/main/java/com/shop/Pricing.java`.
//!
//! [`repo_path`] strips what is certainly not repository structure (URL
//! schemes, bundler prefixes, container roots, package-install roots) and, for
//! JVM frames, rebuilds the package directory from the function
//! (`com.shop.Pricing.quote` + `Pricing.java` → `com/shop/Pricing.java`).
//! [`match_len`] then compares path components from the end: a frame and a
//! changed file are the same file when one path is a component-wise suffix of
//! the other, and the longest such match wins.

use selfheal_schemas::Frame;

/// Roots that are container or install layout, never repository structure;
/// everything up to and including the *last* occurrence is dropped.
const INSTALL_ROOTS: &[&str] = &[
    "site-packages/",
    "dist-packages/",
    "/go/pkg/mod/",
    "/node_modules/",
    "/.cargo/registry/src/",
];

/// Leading container roots (`/app/` …) dropped from absolute paths.
const CONTAINER_ROOTS: &[&str] = &[
    "/usr/src/app/",
    "/opt/app/",
    "/home/app/",
    "/workspace/",
    "/code/",
    "/srv/",
    "/app/",
    "/go/src/",
    "/build/",
    "/src/",
];

/// The repository-relative path a frame most likely refers to (may still carry
/// a leading directory that is not in the repository; matching is by suffix).
pub fn repo_path(frame: &Frame) -> String {
    locate_path(frame).0
}

/// [`repo_path`], and whether a container root (`/app/` …) was stripped: such
/// a path is relative to the application root, which is the repository root
/// or, in a monorepo, the service's directory (see [`match_frame`]).
pub fn locate_path(frame: &Frame) -> (String, bool) {
    let mut p = frame.file.trim().replace('\\', "/");
    // URL-ish prefixes: file://, webpack:///./, app:///, webpack://name/.
    if let Some((scheme, rest)) = p.clone().split_once("://") {
        if !scheme.contains('/') {
            p = rest.trim_start_matches('/').to_owned();
            if scheme == "webpack" {
                // `webpack://project/./src/x.ts` → `./src/x.ts`
                if let Some(i) = p.find("/./") {
                    p = p[i + 1..].to_owned();
                }
            }
            p.insert(0, '/');
        }
    }
    // Query strings and `:line:col` tails some runtimes leave on the path.
    if let Some(i) = p.find('?') {
        p.truncate(i);
    }
    // Windows drive letters.
    if p.len() > 2 && p.as_bytes()[1] == b':' && p.as_bytes()[2] == b'/' {
        p = p[2..].to_owned();
    }
    for root in INSTALL_ROOTS {
        if let Some(i) = p.rfind(root) {
            p = p[i + root.len()..].to_owned();
            // Go module cache: `github.com/x/y@v1.2.3/pkg/f.go` → `pkg/f.go`.
            if *root == "/go/pkg/mod/" {
                if let Some(at) = p.find('@') {
                    p = p[at..]
                        .split_once('/')
                        .map(|(_, r)| r)
                        .unwrap_or(&p)
                        .to_owned();
                }
            }
        }
    }
    let mut rooted = false;
    for root in CONTAINER_ROOTS {
        if let Some(rest) = p.strip_prefix(root) {
            p = rest.to_owned();
            // `/src/` is as often the repository's own top-level `src/`
            // (a .NET or Node image built with `WORKDIR /` and the PDB path
            // `/src/App.Cart/Cart.cs`) as a checkout root: match by suffix.
            rooted = !matches!(*root, "/go/src/" | "/src/");
            break;
        }
    }
    let mut p = p.as_str();
    while let Some(rest) = p.strip_prefix("./").or_else(|| p.strip_prefix('/')) {
        p = rest;
    }
    let p = p.to_owned();
    if !p.contains('/') {
        if let Some(jvm) = jvm_path(&p, &frame.function) {
            return (jvm, false);
        }
    }
    (p, rooted)
}

/// Like [`match_len`], for a frame located by [`locate_path`]: a *rooted* frame
/// path (`lib/pricing.js` from `/usr/src/app/lib/pricing.js`) matches a longer
/// repository path only when the extra leading directories name the service
/// (`services/checkout/lib/pricing.js`, a monorepo), so `legacy/lib/pricing.js`
/// is another file.
pub fn match_frame(
    frame_path: &str,
    rooted: bool,
    repo_path: &str,
    service: &str,
) -> Option<usize> {
    let len = match_len(frame_path, repo_path)?;
    let frame_parts = frame_path.split('/').filter(|s| !s.is_empty()).count();
    let repo_parts: Vec<&str> = repo_path.split('/').filter(|s| !s.is_empty()).collect();
    if rooted && repo_parts.len() > frame_parts {
        let extra = &repo_parts[..repo_parts.len() - frame_parts];
        let service = service.to_ascii_lowercase();
        if service.is_empty() || !extra.iter().any(|d| d.to_ascii_lowercase() == service) {
            return None;
        }
    }
    Some(len)
}

/// `Pricing.java` + `com.shop.Pricing.quote` → `com/shop/Pricing.java`; also
/// Kotlin (`PricingKt`), inner classes (`Pricing$Rule`) and lambdas.
fn jvm_path(file: &str, function: &str) -> Option<String> {
    let (stem, ext) = file.rsplit_once('.')?;
    if !matches!(ext, "java" | "kt" | "scala" | "groovy" | "clj") {
        return None;
    }
    let segments: Vec<&str> = function.split('.').collect();
    // The class segment is the one named after the file (modulo `$Inner`,
    // Kotlin's `Kt` suffix); the package is everything before it.
    let class_at = segments.iter().rposition(|s| {
        let class = s.split('$').next().unwrap_or(s);
        class == stem || class.strip_suffix("Kt") == Some(stem)
    });
    let package = match class_at {
        Some(i) => &segments[..i],
        // Unknown layout: package = all but `Class.method`.
        None if segments.len() > 2 => &segments[..segments.len() - 2],
        None => return None,
    };
    if package.is_empty()
        || package
            .iter()
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return None;
    }
    Some(format!("{}/{file}", package.join("/")))
}

/// How many trailing path components the frame path and a repository path
/// share, when one is a component-wise suffix of the other (the file is the
/// same); `None` when they name different files.
pub fn match_len(frame_path: &str, repo_path: &str) -> Option<usize> {
    let a: Vec<&str> = frame_path.split('/').filter(|s| !s.is_empty()).collect();
    let b: Vec<&str> = repo_path.split('/').filter(|s| !s.is_empty()).collect();
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let common = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (common > 0 && common == a.len().min(b.len())).then_some(common)
}

/// The function's short name: `com.shop.Pricing.quote` → `quote`,
/// `checkout/pricing.(*Quoter).Quote` → `Quote`, `Object.<anonymous>` → ``.
pub fn short_function(function: &str) -> &str {
    let f = function.trim();
    let f = f.rsplit(['.', ':', '/', ' ']).next().unwrap_or(f);
    let f = f.trim_end_matches("()");
    let f = f.split('$').next().unwrap_or(f);
    if f.starts_with('<') || f.is_empty() {
        ""
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str, function: &str) -> Frame {
        Frame {
            file: file.into(),
            line: Some(1),
            function: function.into(),
            in_app: true,
        }
    }

    fn rp(file: &str, function: &str) -> String {
        repo_path(&frame(file, function))
    }

    #[test]
    fn python_container_and_site_packages() {
        assert_eq!(
            rp("/app/src/checkout/pricing.py", "quote"),
            "src/checkout/pricing.py"
        );
        assert_eq!(
            rp("/src/checkout/pricing.py", "quote"),
            "checkout/pricing.py"
        );
        assert_eq!(
            rp(
                "/usr/local/lib/python3.12/site-packages/checkout/pricing.py",
                "quote"
            ),
            "checkout/pricing.py"
        );
        assert_eq!(rp("pricing.py", "quote"), "pricing.py");
        assert_eq!(
            match_len("checkout/pricing.py", "src/checkout/pricing.py"),
            Some(2)
        );
        assert_eq!(
            match_len("/app/src/checkout/pricing.py", "src/checkout/pricing.py"),
            Some(3)
        );
    }

    #[test]
    fn jvm_package_from_function() {
        assert_eq!(
            rp("Pricing.java", "com.shop.Pricing.quote"),
            "com/shop/Pricing.java"
        );
        assert_eq!(
            rp("Pricing.java", "com.shop.Pricing$Rule.apply"),
            "com/shop/Pricing.java"
        );
        assert_eq!(
            rp("Pricing.kt", "com.shop.PricingKt.quote"),
            "com/shop/Pricing.kt"
        );
        let p = rp("Pricing.java", "com.shop.Pricing.lambda$quote$0");
        assert_eq!(p, "com/shop/Pricing.java");
        assert_eq!(
            match_len(&p, "services/api/src/main/java/com/shop/Pricing.java"),
            Some(3)
        );
        assert_eq!(match_len(&p, "src/main/java/com/other/Pricing.java"), None);
        assert_eq!(
            match_len(&p, "src/test/java/com/shop/PricingTest.java"),
            None,
            "a test class is another file"
        );
    }

    #[test]
    fn node_paths() {
        assert_eq!(
            rp("/app/src/routes/cart.js", "handler"),
            "src/routes/cart.js"
        );
        assert_eq!(rp("webpack:///./src/cart.ts", "x"), "src/cart.ts");
        assert_eq!(rp("file:///srv/web/lib/cart.mjs", "x"), "web/lib/cart.mjs");
        assert_eq!(
            rp("/app/node_modules/express/lib/router.js", "handle"),
            "express/lib/router.js"
        );
        assert_eq!(match_len("routes/cart.js", "src/routes/cart.js"), Some(2));
    }

    #[test]
    fn go_paths() {
        let p = rp(
            "/go/src/github.com/shop/api/pricing/quote.go",
            "github.com/shop/api/pricing.Quote",
        );
        assert_eq!(p, "github.com/shop/api/pricing/quote.go");
        assert_eq!(match_len(&p, "pricing/quote.go"), Some(2));
        assert_eq!(
            rp(
                "/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go",
                "pq.(*conn).Exec"
            ),
            "conn.go"
        );
        assert_eq!(
            short_function("github.com/shop/api/pricing.(*Quoter).Quote"),
            "Quote"
        );
    }

    #[test]
    fn rooted_frames_need_the_service_directory_to_match_deeper_paths() {
        let (p, rooted) = locate_path(&frame("/usr/src/app/lib/pricing.js", "x"));
        assert_eq!((p.as_str(), rooted), ("lib/pricing.js", true));
        assert_eq!(match_frame(&p, rooted, "lib/pricing.js", "web"), Some(2));
        assert_eq!(
            match_frame(&p, rooted, "legacy/lib/pricing.js", "web"),
            None
        );
        assert_eq!(
            match_frame(&p, rooted, "services/web/lib/pricing.js", "web"),
            Some(2)
        );
        let (p, rooted) = locate_path(&frame("Pricing.java", "com.shop.Pricing.quote"));
        assert!(!rooted);
        assert!(match_frame(&p, rooted, "src/main/java/com/shop/Pricing.java", "api").is_some());
    }

    #[test]
    fn different_files_do_not_match() {
        assert_eq!(match_len("src/ax.py", "x.py"), None);
        assert_eq!(match_len("lib/utils.py", "src/other/utils.py"), None);
        assert_eq!(
            match_len("checkout/pricing.py", "tests/test_pricing.py"),
            None
        );
    }

    #[test]
    fn short_function_names() {
        assert_eq!(short_function("com.shop.Pricing.quote"), "quote");
        assert_eq!(short_function("quote"), "quote");
        assert_eq!(short_function("Object.<anonymous>"), "");
        assert_eq!(short_function("CartService.total"), "total");
    }
}
