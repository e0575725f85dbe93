//! Range checks of the configuration, run after it is loaded: a value that
//! parses but cannot mean anything (`detector.alpha = 7.0`, zero partitions)
//! is refused with its key named, instead of silently changing behaviour.
//!
//! Each section's config type checks its own keys ([`CheckRanges`]), next to
//! its fields, so a new setting and its range land in one crate; the loader
//! runs every section under its name ([`Ranges::section`]).

/// One refused value: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// The dotted key (`detector.alpha`).
    pub key: String,
    /// What the value must be, and what it is.
    pub message: String,
}

/// A config section that can say which of its values are out of range.
pub trait CheckRanges {
    /// Records every out-of-range value in `r`, keys relative to the section.
    fn check_ranges(&self, r: &mut Ranges);
}

/// Collects the out-of-range values of a configuration, in check order.
#[derive(Debug, Default)]
pub struct Ranges {
    prefix: Vec<String>,
    out: Vec<OutOfRange>,
}

impl Ranges {
    /// An empty collection, at the top level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `section` with its keys under `name` (`detector` → `detector.alpha`).
    pub fn section(&mut self, name: &str, section: &impl CheckRanges) {
        self.prefix.push(name.to_owned());
        section.check_ranges(self);
        self.prefix.pop();
    }

    /// Refuses `key` (relative to the current section) with `message`.
    pub fn refuse(&mut self, key: &str, message: impl Into<String>) {
        let key = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        self.out.push(OutOfRange {
            key,
            message: message.into(),
        });
    }

    /// `v` must lie strictly between 0 and 1.
    pub fn open_unit(&mut self, key: &str, v: f64) {
        if !(v > 0.0 && v < 1.0) {
            self.refuse(key, format!("must be between 0 and 1, exclusive (is {v})"));
        }
    }

    /// `v` must lie in [0, 1].
    pub fn closed_unit(&mut self, key: &str, v: f64) {
        if !(0.0..=1.0).contains(&v) {
            self.refuse(key, format!("must be between 0 and 1 (is {v})"));
        }
    }

    /// `v` must be finite and ≥ 0.
    pub fn non_negative(&mut self, key: &str, v: f64) {
        if !(v >= 0.0 && v.is_finite()) {
            self.refuse(key, format!("must be a finite number ≥ 0 (is {v})"));
        }
    }

    /// `v` must be at least 1.
    pub fn at_least_one<T: TryInto<i64>>(&mut self, key: &str, v: T) {
        // Only values too large for i64 fail the conversion, and they pass.
        let v: i64 = v.try_into().unwrap_or(i64::MAX);
        if v < 1 {
            self.refuse(key, format!("must be at least 1 (is {v})"));
        }
    }

    /// The refused values, in the order they were checked.
    pub fn finish(self) -> Vec<OutOfRange> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Inner(f64);
    impl CheckRanges for Inner {
        fn check_ranges(&self, r: &mut Ranges) {
            r.open_unit("alpha", self.0);
        }
    }
    struct Outer(Inner, usize);
    impl CheckRanges for Outer {
        fn check_ranges(&self, r: &mut Ranges) {
            r.at_least_one("n", self.1);
            r.section("inner", &self.0);
        }
    }

    #[test]
    fn keys_carry_their_sections() {
        let mut r = Ranges::new();
        r.section("outer", &Outer(Inner(7.0), 0));
        let out = r.finish();
        let keys: Vec<&str> = out.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["outer.n", "outer.inner.alpha"]);
        assert!(out[1].message.contains("is 7"), "{out:?}");
    }

    #[test]
    fn each_rule_refuses_what_it_should() {
        let mut r = Ranges::new();
        r.open_unit("a", 0.0);
        r.open_unit("ok", 0.5);
        r.closed_unit("b", 1.5);
        r.closed_unit("ok", 1.0);
        r.non_negative("c", f64::NAN);
        r.non_negative("d", f64::INFINITY);
        r.non_negative("ok", 0.0);
        r.at_least_one("e", 0u16);
        r.at_least_one("f", -1i16);
        r.at_least_one("ok", usize::MAX);
        let keys: Vec<String> = r.finish().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f"]);
    }
}
