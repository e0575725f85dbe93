//! Online template grouping in the spirit of Drain (He et al., ICWS 2017).
//!
//! Masking alone splits a bug whose messages differ in a plain word that is not
//! an id (a user name, a host, a table). The grouper merges such messages: a
//! masked template is compared with the templates of earlier groups that have the
//! same scope (service + exception type), the same number of tokens and the same
//! first token; when enough of their constant tokens agree, the message joins the
//! most similar group and the positions that differ become `<*>`.
//!
//! Two guards keep different bugs apart:
//! - the scope: different services or exception types never merge;
//! - outcome words (`refused`/`reset`, `true`/`false`, `not` …) are never
//!   generalized: messages that differ in them describe different failures.
//!
//! Properties: one pass; deterministic for a given input order (no iteration over
//! hash maps decides anything); bounded memory (at most `max_groups` groups,
//! evicted by the CLOCK second-chance policy, which is deterministic too).
//!
//! A group's id is the hash of its *founding* template, so it never changes while
//! the group lives, even as its template generalizes.

use std::borrow::Cow;
use std::collections::HashMap;

use super::hash::{PreHashed, StableHasher};
use super::mask::WILDCARD;

/// Grouping settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupingConfig {
    /// Minimum share of a group's constant tokens a message must match to join it
    /// (Drain's similarity threshold). `> 1.0` disables merging.
    pub similarity: f64,
    /// Most groups kept; beyond it the least recently used are forgotten.
    pub max_groups: usize,
}

impl Default for GroupingConfig {
    fn default() -> Self {
        Self {
            similarity: 0.65,
            max_groups: 100_000,
        }
    }
}

struct Group {
    /// Current template tokens.
    tokens: Vec<Box<str>>,
    /// Current template, tokens joined by spaces.
    template: String,
    /// Hash of the founding template: the group's stable identity.
    founding: u64,
    /// The leaf the group lives in.
    leaf: u64,
    /// CLOCK reference bit.
    referenced: bool,
    /// Bumped when the slot is reused, invalidating cache entries.
    generation: u32,
    /// Creation order: ties between equally similar groups go to the oldest.
    created: u64,
    alive: bool,
}

/// Most groups of one leaf compared with a new message. A leaf (same scope,
/// token count and first token) rarely holds more than a handful of groups;
/// one that does is a service logging unstructured free text, and comparing
/// each new message with all of them would make the grouper quadratic (a
/// flood of distinct messages would stall ingest). Beyond this many, only the
/// most recently used are candidates: a live group keeps its place, an old one
/// may be split off anew, which costs a duplicate signature, not a stall.
/// Leaves this small behave exactly as if unbounded.
const LEAF_SCAN: usize = 64;

/// What [`Grouper::group`] decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned<'a> {
    /// Stable identity of the group (hash of its founding template and scope).
    pub group: u64,
    /// The group's current template.
    pub template: &'a str,
}

/// The online grouper. See the module docs.
pub struct Grouper {
    config: GroupingConfig,
    groups: Vec<Group>,
    free: Vec<u32>,
    leaves: HashMap<u64, Vec<u32>, PreHashed>,
    /// (scope, exact masked template) → (group slot, generation).
    exact: HashMap<u64, (u32, u32), PreHashed>,
    hand: usize,
    scratch: Vec<usize>,
    /// Groups created so far.
    created: u64,
}

impl std::fmt::Debug for Grouper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grouper")
            .field("config", &self.config)
            .field("groups", &self.len())
            .finish_non_exhaustive()
    }
}

impl Grouper {
    /// An empty grouper.
    pub fn new(config: GroupingConfig) -> Self {
        Self {
            config,
            groups: Vec::new(),
            free: Vec::new(),
            leaves: HashMap::default(),
            exact: HashMap::default(),
            hand: 0,
            scratch: Vec::new(),
            created: 0,
        }
    }

    /// Number of live groups.
    pub fn len(&self) -> usize {
        self.groups.len() - self.free.len()
    }

    /// Whether there are no groups.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Assigns a masked `template` (tokens separated by single spaces) within
    /// `scope` to a group, creating or generalizing groups as needed.
    pub fn group(&mut self, scope: u64, template: &str) -> Assigned<'_> {
        self.group_with(scope, template, Cow::Borrowed)
    }

    /// Like [`Grouper::group`], but a template not seen before is first passed
    /// through `prepare` (the normalizer scrubs it there, so a group's template
    /// and id never carry a secret, at no cost for templates already seen).
    pub fn group_with<'t>(
        &mut self,
        scope: u64,
        template: &'t str,
        prepare: impl FnOnce(&'t str) -> Cow<'t, str>,
    ) -> Assigned<'_> {
        let mut h = StableHasher::new();
        h.write_u64(scope);
        h.write_str(template);
        let exact_key = h.finish();
        if let Some(&(slot, generation)) = self.exact.get(&exact_key) {
            let g = &mut self.groups[slot as usize];
            if g.alive && g.generation == generation {
                g.referenced = true;
                let g = &self.groups[slot as usize];
                return Assigned {
                    group: g.founding,
                    template: &g.template,
                };
            }
        }
        let prepared = prepare(template);
        let slot = self.assign_slow(scope, &prepared);
        if self.exact.len() >= self.config.max_groups.saturating_mul(4).max(1024) {
            // Bounded: forget the cache (it is only a shortcut; decisions are the same).
            self.exact.clear();
        }
        let generation = self.groups[slot as usize].generation;
        self.exact.insert(exact_key, (slot, generation));
        let g = &self.groups[slot as usize];
        Assigned {
            group: g.founding,
            template: &g.template,
        }
    }

    fn assign_slow(&mut self, scope: u64, template: &str) -> u32 {
        let tokens: Vec<&str> = if template.is_empty() {
            Vec::new()
        } else {
            template.split(' ').collect()
        };
        let leaf = leaf_key(scope, &tokens);
        let mut best: Option<(u32, f64, usize)> = None;
        let mut best_at = 0;
        if let Some(members) = self.leaves.get(&leaf) {
            // Bounded work per message: only the most recently used groups of
            // a crowded leaf are candidates (see LEAF_SCAN).
            let from = members.len().saturating_sub(LEAF_SCAN);
            for (at, &slot) in members.iter().enumerate().skip(from) {
                let g = &self.groups[slot as usize];
                let Some((sim, wild)) = similarity(&g.tokens, &tokens) else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((b, s, w)) => {
                        sim > s
                            || (sim == s && wild > w)
                            || (sim == s
                                && wild == w
                                && g.created < self.groups[b as usize].created)
                    }
                };
                if better {
                    best = Some((slot, sim, wild));
                    best_at = at;
                }
            }
        }
        if let Some((slot, sim, _)) = best {
            if sim >= self.config.similarity {
                if let Some(members) = self.leaves.get_mut(&leaf) {
                    // Most recently used last, so it stays a candidate.
                    if best_at + 1 < members.len() {
                        members.remove(best_at);
                        members.push(slot);
                    }
                }
                self.generalize(slot, &tokens);
                let g = &mut self.groups[slot as usize];
                g.referenced = true;
                return slot;
            }
        }
        self.create(scope, leaf, template, &tokens)
    }

    fn generalize(&mut self, slot: u32, tokens: &[&str]) {
        self.scratch.clear();
        let g = &mut self.groups[slot as usize];
        for (i, (t, m)) in g.tokens.iter().zip(tokens).enumerate() {
            if &**t != WILDCARD && &**t != *m && !accepts(t, m) {
                self.scratch.push(i);
            }
        }
        if self.scratch.is_empty() {
            return;
        }
        for &i in &self.scratch {
            g.tokens[i] = generalized(&g.tokens[i], tokens[i]);
        }
        g.template.clear();
        for (i, t) in g.tokens.iter().enumerate() {
            if i > 0 {
                g.template.push(' ');
            }
            g.template.push_str(t);
        }
    }

    fn create(&mut self, scope: u64, leaf: u64, template: &str, tokens: &[&str]) -> u32 {
        if self.len() >= self.config.max_groups.max(1) {
            self.evict_one();
        }
        let mut h = StableHasher::new();
        h.write_u64(scope);
        h.write_str(template);
        let group = Group {
            tokens: tokens.iter().map(|t| Box::<str>::from(*t)).collect(),
            template: template.to_owned(),
            founding: h.finish(),
            leaf,
            referenced: true,
            generation: 0,
            created: self.created,
            alive: true,
        };
        self.created += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                let generation = self.groups[slot as usize].generation.wrapping_add(1);
                self.groups[slot as usize] = Group {
                    generation,
                    ..group
                };
                slot
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1) as u32
            }
        };
        self.leaves.entry(leaf).or_default().push(slot);
        slot
    }

    /// CLOCK: sweep, clearing reference bits, until an unreferenced group is found.
    fn evict_one(&mut self) {
        let n = self.groups.len();
        loop {
            let i = self.hand % n;
            self.hand = (self.hand + 1) % n;
            let g = &mut self.groups[i];
            if !g.alive {
                continue;
            }
            if g.referenced {
                g.referenced = false;
                continue;
            }
            g.alive = false;
            g.tokens = Vec::new();
            g.template = String::new();
            let leaf = g.leaf;
            if let Some(members) = self.leaves.get_mut(&leaf) {
                members.retain(|&s| s as usize != i);
                if members.is_empty() {
                    self.leaves.remove(&leaf);
                }
            }
            self.free.push(i as u32);
            return;
        }
    }
}

fn leaf_key(scope: u64, tokens: &[&str]) -> u64 {
    let mut h = StableHasher::new();
    h.write_u64(scope);
    h.write_u64(tokens.len() as u64);
    match tokens.first() {
        Some(t) if !t.contains(WILDCARD) => h.write_str(t),
        Some(_) => h.write_str(WILDCARD),
        None => {}
    }
    h.finish()
}

/// Share of the group's constant tokens that `tokens` matches, and the group's
/// wildcard count; `None` when the two may not merge (a differing outcome word,
/// code identifier or key).
fn similarity(group: &[Box<str>], tokens: &[&str]) -> Option<(f64, usize)> {
    let mut constants = 0usize;
    let mut matches = 0usize;
    let mut wild = 0usize;
    for (t, m) in group.iter().zip(tokens) {
        if &**t == WILDCARD {
            wild += 1;
            continue;
        }
        if &**t == *m {
            constants += 1;
            matches += 1;
            continue;
        }
        // `key=<*>` accepts any value of the same key.
        if accepts(t, m) {
            wild += 1;
            continue;
        }
        if !mergeable(t, m) {
            return None;
        }
        constants += 1;
    }
    let sim = if constants == 0 {
        1.0
    } else {
        matches as f64 / constants as f64
    };
    Some((sim, wild))
}

/// Whether two differing tokens may be the same variable.
fn mergeable(a: &str, b: &str) -> bool {
    if key_of(a) != key_of(b) {
        return false;
    }
    !(has_outcome_word(a) || has_outcome_word(b) || is_code_identifier(a) || is_code_identifier(b))
}

/// The `key=` / `key:` prefix of a `key=value` token, separator included. A `:`
/// key must be a plain identifier, so `db-primary.internal:<*>` (host:port) is
/// not a key.
fn key_of(token: &str) -> Option<&str> {
    let p = token.find(['=', ':'])?;
    let key = token[..p].trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let ok = !key.is_empty()
        && if token.as_bytes()[p] == b'=' {
            key.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        } else {
            key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        };
    ok.then(|| &token[..=p])
}

/// Whether a template token with one `<*>` (`key=<*>)`) accepts `token`.
fn accepts(template_token: &str, token: &str) -> bool {
    let Some(p) = template_token.find(WILDCARD) else {
        return false;
    };
    let (pre, post) = (&template_token[..p], &template_token[p + WILDCARD.len()..]);
    !pre.is_empty()
        && key_of(template_token).is_some()
        && token.len() > pre.len() + post.len()
        && token.starts_with(pre)
        && token.ends_with(post)
}

/// The generalized form of a token that differs from `other`: `key=<*>` keeps
/// its key and the closing punctuation both share.
fn generalized(token: &str, other: &str) -> Box<str> {
    let Some(k) = key_of(token) else {
        return WILDCARD.into();
    };
    let common = token
        .bytes()
        .rev()
        .zip(other.bytes().rev())
        .take_while(|(a, b)| a == b && matches!(a, b')' | b']' | b'}' | b',' | b';' | b'"' | b'\''))
        .count();
    format!("{k}{WILDCARD}{}", &token[token.len() - common..]).into()
}

/// `camelCase` / `PascalCase` code identifiers (`brightnessIn`,
/// `NullPointerException`) name code, not data.
fn is_code_identifier(token: &str) -> bool {
    let w = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    w.len() >= 4
        && w.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_')
        && w.as_bytes()
            .windows(2)
            .any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase())
}

/// Whether any alphanumeric part of the token is an outcome or lifecycle word.
fn has_outcome_word(token: &str) -> bool {
    token
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .any(is_outcome_word)
}

/// Words whose difference means a different event, not a different value.
fn is_outcome_word(w: &str) -> bool {
    const WORDS: [&str; 67] = [
        "not",
        "no",
        "never",
        "cannot",
        "can't",
        "won't",
        "fail",
        "failed",
        "fails",
        "failure",
        "error",
        "success",
        "successful",
        "succeeded",
        "ok",
        "refused",
        "reset",
        "denied",
        "timeout",
        "closed",
        "open",
        "opened",
        "started",
        "stopped",
        "true",
        "false",
        "null",
        "none",
        "nil",
        "undefined",
        "invalid",
        "valid",
        "missing",
        "unknown",
        "accepted",
        "rejected",
        "allowed",
        "forbidden",
        "unauthorized",
        "expired",
        "enabled",
        "disabled",
        "full",
        "empty",
        "start",
        "stop",
        "begin",
        "end",
        "over",
        "done",
        "finish",
        "finished",
        "enter",
        "exit",
        "entering",
        "exiting",
        "up",
        "down",
        "on",
        "off",
        "in",
        "out",
        "yes",
        "before",
        "after",
        "read",
        "write",
    ];
    w.len() <= 12 && WORDS.iter().any(|x| w.eq_ignore_ascii_case(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::mask::mask;

    fn run(g: &mut Grouper, lines: &[&str]) -> Vec<u64> {
        lines.iter().map(|l| g.group(7, &mask(l)).group).collect()
    }

    #[test]
    fn plain_word_variables_group_and_template_generalizes() {
        let mut g = Grouper::new(GroupingConfig::default());
        let ids = run(
            &mut g,
            &[
                "Invalid user webmaster from 173.234.31.186",
                "Invalid user test from 10.0.0.2",
                "Invalid user oracle from 10.0.0.3",
            ],
        );
        assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
        assert_eq!(
            g.group(7, &mask("Invalid user admin from 1.2.3.4"))
                .template,
            "Invalid user <*> from <*>"
        );
    }

    #[test]
    fn outcome_words_and_scopes_keep_bugs_apart() {
        let mut g = Grouper::new(GroupingConfig::default());
        let ids = run(
            &mut g,
            &[
                "Connection refused calling payments-api",
                "Connection reset calling payments-api",
                "Payment authorized: false",
                "Payment authorized: true",
                "HBM brightnessIn =38",
                "HBM brightnessOut =38",
                "getRecentTasks: num=20,flags=62",
                "getRecentTasks: topActivity=ComponentInfo{com.x/com.x.Main}",
                "layout pass for window main begin",
                "layout pass for window main end",
            ],
        );
        for pair in ids.chunks(2) {
            assert_ne!(pair[0], pair[1]);
        }
        let a = g.group(1, "disk full on host a").group;
        let b = g.group(2, "disk full on host a").group;
        assert_ne!(a, b, "scopes never merge");
    }

    #[test]
    fn keyed_values_generalize_keeping_key_and_punctuation() {
        let mut g = Grouper::new(GroupingConfig::default());
        let ids = run(
            &mut g,
            &[
                "Timeout calling payments (request_id=9f8e7d)",
                "Timeout calling payments (request_id=abcdefabcdef)",
                "Connection refused to db-primary.internal:5432",
                "Connection refused to cache-eu.internal:6379",
            ],
        );
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[2], ids[3]);
        assert_eq!(
            g.group(
                7,
                &mask("Timeout calling payments (request_id=fedcbafedcba)")
            )
            .template,
            "Timeout calling payments (request_id=<*>)"
        );
    }

    /// Letters only (no digits, so masking keeps them): word `i` of a family.
    fn word(family: char, i: usize) -> String {
        let l = |k: usize| (b'a' + (k % 26) as u8) as char;
        format!("{family}{}{}{}", l(i / 676), l(i / 26), l(i))
    }

    #[test]
    fn a_crowded_leaf_keeps_its_live_groups() {
        // 300 unrelated messages share one leaf (same first token and length);
        // a group that keeps being hit stays a candidate although only the
        // most recently used LEAF_SCAN are compared.
        let mut g = Grouper::new(GroupingConfig::default());
        let live = g.group(7, "start live job failed on shard").group;
        for i in 0..300 {
            let line = format!(
                "start {} {} {} {} {}",
                word('p', i),
                word('q', i),
                word('r', i),
                word('s', i),
                word('t', i)
            );
            let id = g.group(7, &line).group;
            assert_ne!(id, live);
            if i % 20 == 0 {
                let again = format!("start live job failed on {}", word('h', i));
                assert_eq!(g.group(7, &again).group, live, "after {i} others");
            }
        }
        assert!(g.leaves.values().any(|m| m.len() > LEAF_SCAN));
    }

    #[test]
    fn memory_is_bounded_and_ids_are_deterministic() {
        let config = GroupingConfig {
            max_groups: 10,
            ..Default::default()
        };
        let lines: Vec<String> = (0..500)
            .map(|i| format!("word{} alpha beta {}", (b'a' + (i % 26) as u8) as char, i))
            .collect();
        let mut a = Grouper::new(config.clone());
        let mut b = Grouper::new(config);
        for l in &lines {
            let x = a.group(0, &format!("k{l}")).group;
            let y = b.group(0, &format!("k{l}")).group;
            assert_eq!(x, y);
        }
        assert!(a.len() <= 10);
    }
}
