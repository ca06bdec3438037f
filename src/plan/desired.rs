//! A planned body kept as its JSON text.
//!
//! A fleet's plan holds hundreds of thousands of bodies from planning until each is applied.
//! As `serde_json::Value` trees they cost about 11 KiB per object (a B-tree node per small
//! map); as text, about a fifth of that. Apply parses one body when it applies its node, and a
//! saved plan writes the text as it is, so the file's bytes (and digest) are those of the body.

use crate::render::Body;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A body as compact JSON text; [`Desired::body`] gives it back.
#[derive(Debug, Clone)]
pub struct Desired(Box<RawValue>);

impl Desired {
    /// Keeps `body` as text.
    pub fn new(body: &Body) -> Desired {
        Desired(serde_json::value::to_raw_value(body).expect("bodies always serialise"))
    }

    /// The body. The text was written from a [`Body`], or checked to be one when a saved plan
    /// was read.
    pub fn body(&self) -> Body {
        serde_json::from_str(self.0.get()).expect("a planned body parses as the body it was written from")
    }
}

impl PartialEq for Desired {
    fn eq(&self, other: &Desired) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Desired {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Read as a [`Body`] (so a saved plan with a malformed body is refused when it is read, not
/// when its node is applied) and kept as text again.
impl<'de> Deserialize<'de> for Desired {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Desired, D::Error> {
        Body::deserialize(deserializer).map(|body| Desired::new(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::FingerprintRef;
    use serde_json::json;

    fn deployment() -> Body {
        Body::Object {
            manifest: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "apiserver", "namespace": "cluster-a"}}),
            fingerprints: vec![FingerprintRef {
                pointer: "/spec/template/metadata/annotations/x".into(),
                mounted: crate::address::Address::parse("cluster/a/secret/ca").unwrap(),
            }],
        }
    }

    #[test]
    fn a_body_kept_as_text_is_written_and_read_as_the_body_itself() {
        let body = deployment();
        let desired = Desired::new(&body);
        assert_eq!(desired.body(), body);
        assert_eq!(serde_json::to_string(&desired).unwrap(), serde_json::to_string(&body).unwrap(), "the same bytes in a saved plan");
        assert_eq!(serde_json::to_value(&desired).unwrap(), serde_json::to_value(&body).unwrap());
        let read: Desired = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(read, desired);
    }

    #[test]
    fn a_saved_body_that_is_no_body_is_refused_when_read() {
        let error = serde_json::from_str::<Desired>(r#"{"type":"object","fingerprints":[]}"#).unwrap_err();
        assert!(error.to_string().contains("manifest"), "{error}");
        assert!(serde_json::from_str::<Desired>(r#"{"type":"spaceship"}"#).is_err());
    }
}
