//! The label of one simulated deploy: one JSON line per deploy in the truth
//! file. Fields added after the classic profile are optional and left out when
//! empty, so classic truth files are byte-identical to the old ones and old
//! files still read.

/// The label of one simulated deploy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Truth {
    /// Service.
    pub(crate) service: String,
    /// Deployed revision.
    pub(crate) revision: String,
    /// Deploy time, epoch ms.
    pub(crate) deployed_at_ms: i64,
    /// `culprit_new`, `culprit_spike`, `clean`, or (golden profile)
    /// `culprit_latency`, `culprit_error_rate`, `culprit_saturation`.
    pub(crate) label: String,
    /// The main confounder around this deploy, if any (`surge`,
    /// `surge_errors`, `outage`, `partial_outage`, `slow_burn`, `rolling`,
    /// `docs`, `tests`, `ci`, `config`, `late`; golden: `dependency_slow`,
    /// `surge`, `noisy_instance`, `gaps`, `restart`, `scale_out`, `rolling`,
    /// `canary`, `late`). In the classic profile only for
    /// clean deploys; in the adversarial one culprits can have one too.
    pub(crate) confounder: Option<String>,
    /// For culprits: the file of the changed line that causes the error.
    pub(crate) culprit_file: Option<String>,
    /// The changed line (new-file numbering), see `culprit_file`.
    pub(crate) culprit_line: Option<u32>,
    /// For culprits: the function enclosing the changed line (for config and
    /// dependency changes: the key or package changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) culprit_function: Option<String>,
    /// For culprits: the best link the errors' stacks allow to the change:
    /// `line` (a frame on the changed line), `function` (a frame in the
    /// changed function, away from the line), `file` (a frame in the changed
    /// file only), `none` (no frame in the change: wrong-value bugs raised
    /// elsewhere, config and dependency changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) linkability: Option<String>,
    /// For culprits: how the bug shows (`changed_line`, `same_function`,
    /// `wrong_value`, `config`, `dependency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bug_kind: Option<String>,
    /// The service's language (`python`, `java`, `kotlin`, `go`, `node`,
    /// `typescript`, `ruby`, `csharp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) language: Option<String>,
    /// Every confounder around the deploy (the first is `confounder`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) confounders: Vec<String>,
    /// For culprits: the signature template-ish message of the injected
    /// error (first line), to tell it from confounders' errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Kinds of the files the diff changes (`code`, `config`, `dependency`,
    /// `tests`, `docs`, `ci`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<String>,
    /// Golden profile: the golden signals the culprit truly degrades
    /// (`latency`, `error_rate`, `saturation`; a leak ending in OOM kills
    /// also lists `error_rate`). Empty for clean deploys and other profiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) signals: Vec<String>,
    /// Golden latency culprits: the `http.route` slowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) route: Option<String>,
    /// Golden culprits: the size of the effect (latency: the route's p99
    /// factor at zero load; 5xx: the rate factor; leak: MB/h per instance;
    /// CPU: the per-request factor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) magnitude: Option<f64>,
    /// Adversarial culprits: when the injected error begins (epoch ms): the
    /// deploy, or 3–40 minutes later for a bug that starts late (a path only
    /// some later requests take). Detection latency is also scored from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_onset_ms: Option<i64>,
}
