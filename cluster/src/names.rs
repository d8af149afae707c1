//! Object names and labels: valid, stable and collision-free.
//!
//! - Image objects ([`image_object_name`]): `sha256-<64 hex>` of the digest. The name comes
//!   from the digest alone, not the image reference: one digest is pulled under many names
//!   (`nginx:1.27`, `docker.io/library/nginx@sha256:…`), and the reservation that makes one
//!   node compute an image's SBOM needs every node to arrive at the same object. The
//!   reference is in `spec.image` and the printer columns.
//! - Instance objects ([`instance_object_name`]): `<kind>-<name>-<container>`, made a valid
//!   DNS-1123 name and cut to 200 characters, then `-` and 10 hex characters of the SHA-256
//!   of the instance id. The id holds the namespace and the image digest, so the same
//!   workload on a new image digest gets a new object, and two ids that read alike once cut
//!   or lower-cased still differ.
//! - Label values ([`label_value`]): at most 63 characters of `[a-z0-9A-Z._-]`; a longer or
//!   changed value keeps 52 characters and ends with `-` and 10 hex of the original's hash.

use std::collections::BTreeMap;

use coordinator::ids::{Digest, InstanceId};
use sha2::{Digest as _, Sha256};

/// Label: the workload's namespace.
pub const LABEL_NAMESPACE: &str = "sniffer.dev/namespace";
/// Label: the workload's kind.
pub const LABEL_WORKLOAD_KIND: &str = "sniffer.dev/workload-kind";
/// Label: the workload's name.
pub const LABEL_WORKLOAD_NAME: &str = "sniffer.dev/workload-name";
/// Label: the container's name.
pub const LABEL_CONTAINER: &str = "sniffer.dev/container";
/// Label: the image digest's hex, cut to a label's 63 characters.
pub const LABEL_IMAGE_DIGEST: &str = "sniffer.dev/image-digest";
/// Label: which agent wrote it.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The 64 hex characters of a `sha256:` digest; anything else (a digest this agent made up
/// for a container without a runtime, or another algorithm) is hashed to 64.
pub fn digest_hex(digest: &Digest) -> String {
    match digest.as_str().strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => h.to_ascii_lowercase(),
        _ => sha256_hex(digest.as_str()),
    }
}

/// The name of an image's [`crate::resources::ImageSbom`] and
/// [`crate::resources::ClusterVulnerabilityReport`].
pub fn image_object_name(digest: &Digest) -> String {
    format!("sha256-{}", digest_hex(digest))
}

/// `text` as a DNS-1123 label's characters: lower case, `[a-z0-9-]`, runs of anything else
/// one `-`, no `-` at either end.
fn dns_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The name of an instance's [`crate::resources::RuntimeSbom`] and
/// [`crate::resources::VulnerabilityReport`].
pub fn instance_object_name(kind: &str, name: &str, container: &str, instance: &InstanceId) -> String {
    let mut readable = dns_part(&format!("{kind}-{name}-{container}"));
    readable.truncate(200);
    let readable = readable.trim_end_matches('-');
    let hash = &sha256_hex(instance.as_str())[..10];
    if readable.is_empty() { format!("instance-{hash}") } else { format!("{readable}-{hash}") }
}

/// `text` as a valid label value (see the module's doc).
pub fn label_value(text: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if text.len() <= 63
        && text.chars().all(valid)
        && text.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && text.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
    {
        return text.to_string();
    }
    let mut kept: String = text.chars().map(|c| if valid(c) { c } else { '-' }).take(52).collect();
    kept = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    let hash = &sha256_hex(text)[..10];
    if kept.is_empty() { hash.to_string() } else { format!("{kept}-{hash}") }
}

/// The parts of a Kubernetes instance id (`namespace/kind/name/container@digest`):
/// namespace, kind, name, container. `None` for an id outside Kubernetes (a container id).
pub fn parse_instance(instance: &InstanceId) -> Option<(&str, &str, &str, &str)> {
    let (path, _digest) = instance.as_str().split_once('@')?;
    let mut parts = path.split('/');
    let found = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(found)
}

/// Labels of an image object.
pub fn image_labels(digest: &Digest) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_IMAGE_DIGEST.to_string(), digest_hex(digest)[..63].to_string()),
        (LABEL_MANAGED_BY.to_string(), crate::FIELD_MANAGER.to_string()),
    ])
}

/// Labels of an instance object.
pub fn instance_labels(
    namespace: &str,
    kind: &str,
    name: &str,
    container: &str,
    digest: &Digest,
) -> BTreeMap<String, String> {
    let mut labels = image_labels(digest);
    labels.insert(LABEL_NAMESPACE.into(), label_value(namespace));
    labels.insert(LABEL_WORKLOAD_KIND.into(), label_value(kind));
    labels.insert(LABEL_WORKLOAD_NAME.into(), label_value(name));
    labels.insert(LABEL_CONTAINER.into(), label_value(container));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS-1123 subdomain, as the API server checks object names.
    fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    }

    fn valid_label(value: &str) -> bool {
        value.len() <= 63
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
            && value.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn one_digest_one_image_object_whatever_the_reference() {
        let d = Digest::from("sha256:4F2C0F6F3A6B6C2D8E1F00112233445566778899AABBCCDDEEFF001122334455");
        let name = image_object_name(&d);
        assert_eq!(name, "sha256-4f2c0f6f3a6b6c2d8e1f00112233445566778899aabbccddeeff001122334455");
        assert!(valid_name(&name));
        // A made-up digest (no runtime) is hashed, still valid and stable.
        let odd = image_object_name(&Digest::from("cgroup:Weird Name/../x"));
        assert!(valid_name(&odd) && odd == image_object_name(&Digest::from("cgroup:Weird Name/../x")));
        assert!(valid_label(&image_labels(&d)[LABEL_IMAGE_DIGEST]));
    }

    #[test]
    fn instance_names_are_valid_stable_and_differ_where_ids_differ() {
        let id = |s: &str| InstanceId::from(s);
        let a = instance_object_name("Deployment", "web", "app", &id("shop/Deployment/web/app@sha256:1"));
        assert!(a.starts_with("deployment-web-app-") && valid_name(&a), "{a}");
        assert_eq!(a, instance_object_name("Deployment", "web", "app", &id("shop/Deployment/web/app@sha256:1")));
        // Another digest, another namespace: other objects.
        assert_ne!(a, instance_object_name("Deployment", "web", "app", &id("shop/Deployment/web/app@sha256:2")));
        assert_ne!(a, instance_object_name("Deployment", "web", "app", &id("prod/Deployment/web/app@sha256:1")));
        // Names that only differ in what a DNS name cannot hold.
        let (x, y) = (id("n/Pod/A_b/c@d"), id("n/Pod/a-b/c@d"));
        assert_ne!(instance_object_name("Pod", "A_b", "c", &x), instance_object_name("Pod", "a-b", "c", &y));
        // Long and hostile parts.
        let long = "x".repeat(300);
        let n = instance_object_name("StatefulSet", &long, "\u{1b}[31m", &id(&long));
        assert!(valid_name(&n) && n.len() <= 253, "{n}");
        assert!(valid_name(&instance_object_name("", "", "", &id("?"))));
    }

    #[test]
    fn instance_ids_parse_back_into_their_parts() {
        let id = InstanceId::from("shop/Deployment/web/app@sha256:1");
        assert_eq!(parse_instance(&id), Some(("shop", "Deployment", "web", "app")));
        for odd in ["0123abcd", "a/b/c@d", "a/b/c/d/e@f", "a/b/c/d"] {
            assert_eq!(parse_instance(&InstanceId::from(odd)), None, "{odd}");
        }
    }

    #[test]
    fn label_values_are_valid_and_keep_what_they_can() {
        assert_eq!(label_value("web-7d9f"), "web-7d9f");
        assert_eq!(label_value(""), "");
        for raw in ["a".repeat(64), "-lead".into(), "trail.".into(), "spaces and / slashes".into(), "ünï".into()] {
            let v = label_value(&raw);
            assert!(valid_label(&v), "{raw:?} -> {v:?}");
            assert_ne!(v, raw);
        }
        assert_ne!(label_value(&"a".repeat(64)), label_value(&"a".repeat(65)));
    }
}
