//! Prints the CRDs of the `sniffer.dev` resources as YAML (kube-rs's `crdgen`):
//! `cargo xtask crds` writes them to deploy/crds/sniffer.dev.yaml.

fn main() -> Result<(), serde_yaml::Error> {
    print!("{}", cluster::resources::crds_yaml()?);
    Ok(())
}
