//! The proxy environment variables, read once at `build()` when
//! [`PoolConfig::proxy_from_env`](crate::PoolConfig::proxy_from_env) is on.
//!
//! As curl reads them for `https://` URLs: `https_proxy`, then `HTTPS_PROXY`, then
//! `all_proxy`, then `ALL_PROXY`; `no_proxy`, then `NO_PROXY`. The lower-case name wins when
//! both are set (curl's order; reqwest checks the upper-case one first). An empty value counts
//! as unset. `HTTP_PROXY` is not read: cleartext origins are never proxied.
//!
//! The reading is a pure function of a lookup, so it is tested without touching the
//! process's environment (which parallel tests share).

use super::ProxyUrl;

/// The proxy variables in curl's order of precedence for `https://` destinations.
const PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The exclusion list's variables, lower-case first.
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// What the environment says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct EnvProxy {
    /// The proxy, when a variable names one.
    pub(crate) proxy: Option<ProxyUrl>,
    /// The exclusion list, when set.
    pub(crate) no_proxy: Option<String>,
}

/// Reads the proxy variables through `lookup` (a variable's value, `None` when unset).
pub(crate) fn read_env(lookup: impl Fn(&str) -> Option<String>) -> EnvProxy {
    let first = |names: &[&str]| {
        names
            .iter()
            .filter_map(|name| lookup(name))
            .find(|value| !value.trim().is_empty())
    };
    EnvProxy {
        proxy: first(&PROXY_VARS).map(ProxyUrl::from),
        no_proxy: first(&NO_PROXY_VARS),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> EnvProxy {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        read_env(|name| vars.get(name).cloned())
    }

    /// Nothing set: no proxy, no list.
    #[test]
    fn an_empty_environment_has_no_proxy() {
        assert_eq!(read(&[]), EnvProxy::default());
    }

    /// Lower case beats upper case, and the https variable beats the catch-all.
    #[test]
    fn precedence_is_curls() {
        let env = read(&[
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
            ("ALL_PROXY", "http://all:1"),
            ("NO_PROXY", "upper.test"),
            ("no_proxy", "lower.test"),
        ]);
        assert_eq!(env.proxy, Some(ProxyUrl::from("http://lower:1")));
        assert_eq!(env.no_proxy.as_deref(), Some("lower.test"));
        let env = read(&[
            ("ALL_PROXY", "http://all:1"),
            ("HTTP_PROXY", "http://plain:1"),
        ]);
        assert_eq!(env.proxy, Some(ProxyUrl::from("http://all:1")));
    }

    /// An empty value is unset, so the next variable in line is used.
    #[test]
    fn empty_values_count_as_unset() {
        let env = read(&[
            ("https_proxy", ""),
            ("HTTPS_PROXY", "http://upper:1"),
            ("no_proxy", " "),
        ]);
        assert_eq!(env.proxy, Some(ProxyUrl::from("http://upper:1")));
        assert_eq!(env.no_proxy, None);
    }
}
