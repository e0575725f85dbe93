//! Optional per-tenant bearer-token auth of the HTTP intake.
//!
//! With no tenants configured every request is allowed. Otherwise a request
//! must carry `Authorization: Bearer <token>` of a known tenant (else 401), and
//! every record it sends must be of a service that tenant may write (else 403,
//! and nothing of the request is written).

use selfheal_common::config::TenantConfig;

/// A tenant with its token resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant name.
    pub name: String,
    token: Vec<u8>,
    services: Vec<String>,
}

impl Tenant {
    /// Whether the tenant may write records of `service`.
    pub fn allows(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == "*" || s == service)
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// A token no tenant has.
    #[error("invalid bearer token")]
    Invalid,
}

/// Why the tenant configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantConfigError {
    /// Neither `token` nor `token_env` (or the variable is unset/empty).
    #[error("tenant `{tenant}` has no token: set `token_env` to a variable holding it (or `token`){detail}")]
    NoToken {
        /// The tenant.
        tenant: String,
        /// Which variable was empty, if any.
        detail: String,
    },
}

/// The configured tenants.
#[derive(Debug, Clone, Default)]
pub struct Tenants(Vec<Tenant>);

impl Tenants {
    /// Resolves tokens (`token_env` via `env`).
    pub fn from_config(
        tenants: &[TenantConfig],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TenantConfigError> {
        let mut out = Vec::with_capacity(tenants.len());
        for t in tenants {
            let token = if !t.token_env.is_empty() {
                env(&t.token_env).unwrap_or_default()
            } else {
                t.token.clone()
            };
            if token.trim().is_empty() {
                return Err(TenantConfigError::NoToken {
                    tenant: t.name.clone(),
                    detail: if t.token_env.is_empty() {
                        String::new()
                    } else {
                        format!(" (`{}` is unset or empty)", t.token_env)
                    },
                });
            }
            out.push(Tenant {
                name: t.name.clone(),
                token: token.trim().as_bytes().to_vec(),
                services: t.services.clone(),
            });
        }
        Ok(Self(out))
    }

    /// Whether auth is on.
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The tenant of an `Authorization` header value; `Ok(None)` when auth is off.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Option<&Tenant>, AuthError> {
        if !self.enabled() {
            return Ok(None);
        }
        let header = authorization.ok_or(AuthError::Missing)?.trim();
        let (scheme, token) = header.split_once(' ').ok_or(AuthError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let token = token.trim().as_bytes();
        // Compare against every tenant in constant time per token, so timing
        // does not reveal how much of a token matched.
        let mut found = None;
        for t in &self.0 {
            if constant_time_eq(&t.token, token) && found.is_none() {
                found = Some(t);
            }
        }
        found.map(Some).ok_or(AuthError::Invalid)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Tenants {
        let cfg = vec![
            TenantConfig {
                name: "shop".into(),
                token: String::new(),
                token_env: "SHOP_TOKEN".into(),
                services: vec!["checkout".into(), "cart".into()],
            },
            TenantConfig {
                name: "ops".into(),
                token: "ops-secret".into(),
                token_env: String::new(),
                services: vec!["*".into()],
            },
        ];
        Tenants::from_config(&cfg, |k| {
            (k == "SHOP_TOKEN").then(|| "shop-secret".to_owned())
        })
        .unwrap()
    }

    #[test]
    fn tokens_map_to_tenants_and_services() {
        let t = tenants();
        assert_eq!(t.authenticate(None), Err(AuthError::Missing));
        assert_eq!(t.authenticate(Some("Basic abc")), Err(AuthError::Missing));
        assert_eq!(t.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
        let shop = t.authenticate(Some("Bearer shop-secret")).unwrap().unwrap();
        assert_eq!(shop.name, "shop");
        assert!(shop.allows("checkout") && !shop.allows("payments"));
        let ops = t
            .authenticate(Some("bearer  ops-secret "))
            .unwrap()
            .unwrap();
        assert!(ops.allows("anything"));
        assert!(Tenants::default().authenticate(None).unwrap().is_none());
    }

    #[test]
    fn a_tenant_without_a_token_is_a_config_error() {
        let cfg = vec![TenantConfig {
            name: "x".into(),
            token: String::new(),
            token_env: "UNSET_VAR".into(),
            services: vec![],
        }];
        let e = Tenants::from_config(&cfg, |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("UNSET_VAR"), "{e}");
    }
}
