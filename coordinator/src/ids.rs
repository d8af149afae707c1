//! The names the flow keeps things under, as types: an image digest is not an instance id,
//! and neither is a report id, though all three are text on the wire (`#[serde(transparent)]`:
//! stored records and events read and write exactly as before).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id! {
    /// An image's manifest digest (`sha256:…`): the key of its SBOM and image report.
    Digest
}

text_id! {
    /// What one SBOM' is learned for: `namespace/pod/container@digest` in Kubernetes, the
    /// container id outside it (see [`crate::model::Workload::instance`]).
    InstanceId
}

text_id! {
    /// A report's unique id (a UUID): the backend's idempotency key.
    ReportId
}

/// Why an instance's learning ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// The learning window was over.
    Window,
    /// The container exited.
    Exited,
    /// `sniffer learn stop`.
    Stopped,
    /// The container went while the daemon was down.
    Vanished,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Window => "window",
            EndReason::Exited => "exited",
            EndReason::Stopped => "stopped",
            EndReason::Vanished => "vanished",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_reasons_are_plain_text_on_the_wire() {
        let digest = Digest::from("sha256:ab");
        assert_eq!(serde_json::to_string(&digest).unwrap(), "\"sha256:ab\"");
        assert_eq!(serde_json::from_str::<Digest>("\"sha256:ab\"").unwrap(), digest);
        assert_eq!(serde_json::to_string(&EndReason::Vanished).unwrap(), "\"vanished\"");
        assert_eq!(EndReason::Window.to_string(), "window");
    }
}
