//! Model families: the name a config file gives its family (`"model": "wavenet_ae"`), so
//! a loader knows which model a directory holds. A WaveNet autoencoder's `config.json`
//! without the key is one (every model directory and Magenta fixture from before the key
//! loads unchanged); a student's `student.json` names `parallel_wavenet`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// The key that names a config's family.
pub const KEY: &str = "model";
/// NSynth's WaveNet autoencoder ([`crate::wavenet`]).
pub const WAVENET_AE: &str = "wavenet_ae";
/// The Parallel WaveNet student ([`crate::student`]).
pub const PARALLEL_WAVENET: &str = "parallel_wavenet";
/// SampleRNN conditioned on the autoencoder's embedding ([`crate::samplernn`]).
pub const SAMPLERNN: &str = "samplernn";

/// `value` as pretty JSON with its family named first.
pub fn to_json<T: Serialize>(family: &str, value: &T) -> Result<String> {
    let mut object = serde_json::Map::new();
    object.insert(KEY.into(), family.into());
    match serde_json::to_value(value)? {
        serde_json::Value::Object(fields) => object.extend(fields),
        _ => return Err(Error::Config("a config is a JSON object".into())),
    }
    Ok(serde_json::to_string_pretty(&object)?)
}

/// Parses a config of `family` from `json`: its family key must name `family` (or, where
/// `default_family`, may be absent); the key is not one of the config's own fields.
pub fn from_json<T: DeserializeOwned>(family: &str, default_family: bool, json: &str) -> Result<T> {
    let mut value: serde_json::Value = serde_json::from_str(json)?;
    let named = value
        .as_object_mut()
        .ok_or_else(|| Error::Config("a config is a JSON object".into()))?
        .remove(KEY);
    match named {
        None if default_family => {}
        None => {
            return Err(Error::Config(format!(
                "the config does not name its model family (\"{KEY}\": \"{family}\")"
            )));
        }
        Some(serde_json::Value::String(name)) if name == family => {}
        Some(other) => {
            return Err(Error::Config(format!(
                "this is a config for the model family {other}, not {family:?}"
            )));
        }
    }
    Ok(serde_json::from_value(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct C {
        width: usize,
    }

    #[test]
    fn the_family_is_named_checked_and_may_default() {
        let json = to_json(WAVENET_AE, &C { width: 3 }).unwrap();
        assert!(json.contains("\"model\": \"wavenet_ae\""), "{json}");
        assert_eq!(
            from_json::<C>(WAVENET_AE, false, &json).unwrap(),
            C { width: 3 }
        );
        assert_eq!(
            from_json::<C>(WAVENET_AE, true, r#"{"width": 4}"#).unwrap(),
            C { width: 4 }
        );
        let err = from_json::<C>(PARALLEL_WAVENET, false, &json).unwrap_err();
        assert!(err.to_string().contains("wavenet_ae"), "{err}");
        assert!(from_json::<C>(PARALLEL_WAVENET, false, r#"{"width": 4}"#).is_err());
    }
}
