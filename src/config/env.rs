//! Reading `OTPD_*` variables, and the list and map forms they take.

use std::collections::BTreeMap;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer};

use super::ENV_PREFIX;

/// `OTPD_A__B=v` as `a.b = "v"`. figment's own `Env` reads `+14155552671`
/// or `0123` as numbers and loses their text; here every value stays a
/// string, and lossy extraction turns it into a number where one is wanted.
pub struct RawEnv(Dict);

impl RawEnv {
    pub fn from(env: &[(String, String)]) -> Self {
        let mut root = Dict::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // Only nested names are settings; `OTPD_TEST_REDIS_URL` and such are not.
            if !rest.contains("__") {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            insert(&mut root, &path, Value::from(value.clone()));
        }
        Self(root)
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [leaf] => {
            dict.insert(leaf.clone(), value);
        }
        [head, rest @ ..] => {
            let child = dict
                .entry(head.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = child {
                insert(inner, rest, value);
            }
        }
    }
}

impl Provider for RawEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("OTPD_ environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// A list given as a list, or as one comma-separated string (how a list
/// arrives from the environment).
pub fn string_list<'de, D: Deserializer<'de>, T: From<String>>(de: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(de)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| T::from(s.to_owned()))
            .collect(),
        OneOrMany::Many(v) => v.into_iter().map(T::from).collect(),
    })
}

/// A map given as a table, or as one string of `key=value` pairs separated
/// by commas (how a map arrives from the environment).
pub fn string_map<'de, D: Deserializer<'de>, T: From<String>>(
    de: D,
) -> Result<BTreeMap<String, T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PairsOrTable {
        Pairs(String),
        Table(BTreeMap<String, String>),
    }
    match PairsOrTable::deserialize(de)? {
        PairsOrTable::Table(map) => Ok(map.into_iter().map(|(k, v)| (k, T::from(v))).collect()),
        PairsOrTable::Pairs(s) => s
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), T::from(v.trim().to_owned())))
                    .ok_or_else(|| serde::de::Error::custom(format!("`{pair}` is not key=value")))
            })
            .collect(),
    }
}

/// A list of tables given as a list, or as one JSON array (how a list of
/// tables arrives from the environment: `OTPD_SMS__ROUTES='[{...}]'`). Read
/// through a JSON value either way, so a bad entry's error says what is
/// wrong rather than that no form matched.
pub fn list_or_json<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    de: D,
) -> Result<Vec<T>, D::Error> {
    let value = match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(text) => serde_json::from_str(&text).map_err(serde::de::Error::custom)?,
        value => value,
    };
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// A list of whole numbers given as a list, or as one comma-separated string.
pub fn number_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<u64>),
    }
    match OneOrMany::deserialize(de)? {
        OneOrMany::Many(v) => Ok(v),
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|n| {
                n.parse()
                    .map_err(|_| serde::de::Error::custom(format!("`{n}` is not a whole number")))
            })
            .collect(),
    }
}

/// A map of numbers given as a table, or as one string of `key=value`
/// pairs separated by commas (how a map arrives from the environment).
pub fn number_map<'de, D: Deserializer<'de>>(de: D) -> Result<BTreeMap<String, f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PairsOrTable {
        Pairs(String),
        Table(BTreeMap<String, f64>),
    }
    let given = PairsOrTable::deserialize(de).map_err(|_| {
        serde::de::Error::custom("must be a table of numbers (`{ NG = 0.30 }`) or pairs (`NG=0.30,GB=0.04`)")
    })?;
    match given {
        PairsOrTable::Table(map) => Ok(map),
        PairsOrTable::Pairs(s) => {
            let mut map = BTreeMap::new();
            for pair in s.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| serde::de::Error::custom(format!("`{pair}` is not key=value")))?;
                let v = v
                    .trim()
                    .parse()
                    .map_err(|_| serde::de::Error::custom(format!("`{pair}` has no number")))?;
                if map.insert(k.trim().to_owned(), v).is_some() {
                    return Err(serde::de::Error::custom(format!("`{}` is given twice", k.trim())));
                }
            }
            Ok(map)
        }
    }
}
