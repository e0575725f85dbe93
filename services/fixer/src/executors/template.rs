//! Argv templates: `["kubectl", "rollout", "undo", "deployment/{service}"]`.
//!
//! No shell is ever involved: each element becomes one argument. Placeholders
//! are substituted only with values that match a strict pattern (letters,
//! digits and `._/:@+=-`, no leading `-`, at most 200 characters), so a value
//! can neither smuggle an option into the program nor anything at all into a
//! shell a program might start. `{{` and `}}` are literal braces.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Longest value accepted for a placeholder.
const MAX_VALUE: usize = 200;

/// Checks that `value` is safe to substitute; returns why not.
pub fn check_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.len() > MAX_VALUE {
        return Err("longer than 200 characters");
    }
    if value.starts_with('-') {
        return Err("starts with '-' (would read as an option)");
    }
    if value.contains("..") {
        return Err("contains '..'");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._/:@+=-".contains(c))
    {
        return Err("contains characters outside [A-Za-z0-9._/:@+=-]");
    }
    Ok(())
}

/// Renders `template` with `vars`. Unknown placeholders and unsafe values are
/// errors; nothing is partially rendered.
pub fn render(template: &[String], vars: &BTreeMap<&str, String>) -> Result<Vec<String>> {
    if template.is_empty() {
        return Err(Error::Config("empty command template".to_owned()));
    }
    template.iter().map(|arg| render_one(arg, vars)).collect()
}

/// Checks a template at start-up: every placeholder must be one of `allowed`.
pub fn validate(template: &[String], allowed: &[&str]) -> Result<()> {
    let vars: BTreeMap<&str, String> = allowed.iter().map(|k| (*k, "x".to_owned())).collect();
    render(template, &vars).map(|_| ())
}

fn render_one(arg: &str, vars: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(Error::Config(format!(
                "unmatched '}}' in template argument {arg:?}"
            )));
        }
        let Some(end) = tail.find('}') else {
            return Err(Error::Config(format!(
                "unclosed '{{' in template argument {arg:?}"
            )));
        };
        let name = &tail[1..end];
        let Some(value) = vars.get(name) else {
            return Err(Error::Config(format!(
                "unknown placeholder {{{name}}} in {arg:?} (known: {})",
                vars.keys()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        };
        check_value(value).map_err(|why| Error::Unsafe {
            placeholder: name.to_owned(),
            value: format!("{value:?}"),
            why,
        })?;
        out.push_str(value);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    fn t(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn substitutes_validated_values() {
        let argv = render(
            &t(&[
                "kubectl",
                "rollout",
                "undo",
                "deployment/{service}",
                "--to={target_revision}",
                "{{x}}",
            ]),
            &vars(&[("service", "checkout"), ("target_revision", "a1b2c3d")]),
        )
        .unwrap();
        assert_eq!(
            argv,
            [
                "kubectl",
                "rollout",
                "undo",
                "deployment/checkout",
                "--to=a1b2c3d",
                "{x}"
            ]
        );
    }

    #[test]
    fn refuses_injection_attempts() {
        for bad in [
            "a; rm -rf /",
            "$(id)",
            "`id`",
            "-rf",
            "--kubeconfig=/etc/x",
            "a b",
            "a\nb",
            "../../etc/passwd",
            "",
            "x|y",
        ] {
            let err = render(&t(&["echo", "{service}"]), &vars(&[("service", bad)])).unwrap_err();
            assert!(matches!(err, Error::Unsafe { .. }), "{bad:?}: {err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn unknown_or_malformed_placeholders_are_config_errors() {
        assert!(validate(&t(&["x", "{nope}"]), &["service"]).is_err());
        assert!(validate(&t(&["x", "{service"]), &["service"]).is_err());
        assert!(validate(&t(&["x", "service}"]), &["service"]).is_err());
        assert!(validate(&t(&[]), &["service"]).is_err());
        assert!(validate(&t(&["x", "{service}"]), &["service"]).is_ok());
    }
}
