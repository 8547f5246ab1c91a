//! Manifests, indexes and image configs, OCI and Docker schema2 alike; chain IDs; choosing a
//! platform's manifest from an index. Documents read from the store are digest-verified first.

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::{Deserialize, Deserializer, Serialize};

use crate::content::ContentStore;
use crate::digest::{ChainId, DiffId, Digest};
use crate::{Error, Result};

pub use oci_spec::image::{
    Descriptor as OciDescriptor, ImageIndex as OciIndex, ImageManifest as OciManifest,
};

/// Media types Berth understands.
pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDIST_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDIST_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Not in the schema2 spec, but written by some tools for uncompressed layers.
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_SCHEMA1_MANIFEST: &str =
        "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}
use media_types as mt;

pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_MANIFEST | mt::DOCKER_MANIFEST)
}
pub fn is_index_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST)
}
pub fn is_config_type(media_type: &str) -> bool {
    matches!(media_type, mt::OCI_CONFIG | mt::DOCKER_CONFIG)
}

pub use crate::layer::Compression;

/// The compression of a layer media type; other types are not image layers.
pub fn layer_compression(media_type: &str) -> Result<Compression> {
    Ok(match media_type {
        mt::OCI_LAYER | mt::OCI_LAYER_NONDIST | mt::DOCKER_LAYER_TAR => Compression::None,
        mt::OCI_LAYER_GZIP
        | mt::OCI_LAYER_NONDIST_GZIP
        | mt::DOCKER_LAYER_GZIP
        | mt::DOCKER_LAYER_FOREIGN_GZIP => Compression::Gzip,
        mt::OCI_LAYER_ZSTD | mt::OCI_LAYER_NONDIST_ZSTD => Compression::Zstd,
        other => {
            return Err(Error::Malformed(format!(
                "unsupported layer media type {other:?}"
            )))
        }
    })
}

/// A parsed manifest-like document.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, never stored in bulk
pub enum Document {
    Manifest(ImageManifest),
    Index(ImageIndex),
}

/// The fields that tell a document's kind, read before parsing it fully.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    config: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest or an index. `media_type` is the type the referring descriptor (or the
/// registry's Content-Type) claims; a document whose fields contradict its type is refused, so
/// one blob cannot be read as a manifest by one client and as an index by another.
pub fn parse_document(data: &[u8], media_type: Option<&str>) -> Result<Document> {
    let probe: Probe = serde_json::from_slice(data).map_err(|e| malformed("manifest", e))?;
    let declared = probe.media_type.as_deref();
    for t in [declared, media_type].into_iter().flatten() {
        if t == mt::DOCKER_SCHEMA1_MANIFEST || t == mt::DOCKER_SCHEMA1_SIGNED {
            return Err(schema1());
        }
    }
    if probe.schema_version == Some(1) {
        return Err(schema1());
    }
    if probe.schema_version != Some(2) {
        return Err(Error::Malformed(format!(
            "unsupported manifest schemaVersion {}",
            probe
                .schema_version
                .map_or("(missing)".into(), |v| v.to_string())
        )));
    }
    // The kind each claimed type names; OCI and Docker types of one kind may be mixed (some
    // registries serve a Docker manifest under an OCI index entry and vice versa).
    let kind = |t: &str| -> Result<bool> {
        if is_index_type(t) {
            Ok(true)
        } else if is_manifest_type(t) {
            Ok(false)
        } else {
            Err(Error::Malformed(format!(
                "unsupported manifest media type {t:?}"
            )))
        }
    };
    let declared_kind = declared.map(kind).transpose()?;
    let expected_kind = media_type.map(kind).transpose()?;
    if let (Some(d), Some(e)) = (declared_kind, expected_kind) {
        if d != e {
            return Err(Error::Malformed(format!(
                "manifest media type {:?} does not match the expected {:?}",
                declared.unwrap_or_default(),
                media_type.unwrap_or_default()
            )));
        }
    }
    let is_index = declared_kind
        .or(expected_kind)
        .unwrap_or(probe.manifests.is_some());
    if is_index {
        if probe.config.is_some() || probe.layers.is_some() {
            return Err(Error::Malformed(
                "index has manifest fields (config, layers)".into(),
            ));
        }
        let index: ImageIndex = serde_json::from_slice(data).map_err(|e| malformed("index", e))?;
        for d in index.manifests() {
            descriptor_digest(d)?;
        }
        Ok(Document::Index(index))
    } else {
        if probe.manifests.is_some() {
            return Err(Error::Malformed(
                "manifest has index fields (manifests)".into(),
            ));
        }
        let m: ImageManifest =
            serde_json::from_slice(data).map_err(|e| malformed("manifest", e))?;
        descriptor_digest(m.config())?;
        for d in m.layers() {
            descriptor_digest(d)?;
        }
        Ok(Document::Manifest(m))
    }
}

fn schema1() -> Error {
    Error::Malformed(
        "Docker Image manifest version 2, schema 1 is not supported: the image must be pushed again with a current client"
            .into(),
    )
}

fn malformed(what: &str, e: serde_json::Error) -> Error {
    Error::Malformed(format!("invalid {what}: {e}"))
}

pub fn parse_manifest(data: &[u8]) -> Result<ImageManifest> {
    match parse_document(data, None)? {
        Document::Manifest(m) => Ok(m),
        Document::Index(_) => Err(Error::Malformed(
            "expected an image manifest, found an index".into(),
        )),
    }
}

pub fn parse_index(data: &[u8]) -> Result<ImageIndex> {
    match parse_document(data, None)? {
        Document::Index(i) => Ok(i),
        Document::Manifest(_) => Err(Error::Malformed(
            "expected an image index, found a manifest".into(),
        )),
    }
}

/// Reads a manifest or index from the store, verifying its digest.
pub fn read_document(
    store: &ContentStore,
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<Document> {
    parse_document(&store.read_verified(digest)?, media_type)
}

pub fn read_manifest(store: &ContentStore, digest: &Digest) -> Result<ImageManifest> {
    parse_manifest(&store.read_verified(digest)?)
}

pub fn read_index(store: &ContentStore, digest: &Digest) -> Result<ImageIndex> {
    parse_index(&store.read_verified(digest)?)
}

/// Reads an image config from the store, verifying its digest (which is the image ID).
pub fn read_config(store: &ContentStore, digest: &Digest) -> Result<ImageConfig> {
    ImageConfig::parse(&store.read_verified(digest)?)
}

/// A descriptor's digest as a store digest (only sha256 is stored).
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::try_from(d.digest())
        .map_err(|e| Error::Malformed(format!("descriptor digest {}: {e}", d.digest())))
}

/// Checks that a manifest describes a runnable image: an image config and layers of known
/// types, as many as the config's diff_ids.
pub fn check_image_manifest(m: &ImageManifest, config: Option<&ImageConfig>) -> Result<()> {
    let ct = m.config().media_type().to_string();
    if !is_config_type(&ct) {
        return Err(Error::Malformed(format!(
            "unsupported image config media type {ct:?}"
        )));
    }
    for l in m.layers() {
        layer_compression(l.media_type().as_ref())?;
    }
    if let Some(c) = config {
        if c.rootfs.diff_ids.len() != m.layers().len() {
            return Err(Error::Malformed(
                "layers from manifest don't match image configuration".into(),
            ));
        }
    }
    Ok(())
}

/// ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Docker's view of an image config (`application/vnd.docker.container.image.v1+json`, a
/// superset of the OCI config). Fields it does not model are kept in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// container, container_config, parent and anything newer.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The container defaults an image carries (`config` in the image JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
    /// Hostname, Image, Tty and the other container.Config fields Docker writes into images.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Durations are nanoseconds, as Docker stores them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub fs_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<DiffId>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    pub fn parse(data: &[u8]) -> Result<ImageConfig> {
        let c: ImageConfig =
            serde_json::from_slice(data).map_err(|e| malformed("image config", e))?;
        if c.rootfs.fs_type != "layers" {
            return Err(Error::Malformed(format!(
                "unsupported rootfs type {:?}",
                c.rootfs.fs_type
            )));
        }
        Ok(c)
    }

    pub fn chain_ids(&self) -> Vec<ChainId> {
        chain_ids(&self.rootfs.diff_ids)
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
        .normalized()
    }
}

/// `null` reads as the default (Docker writes `"history": null`, `"Test": null` ...).
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's strslice: a JSON string is a one-element list.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<S>::deserialize(d)?.map(|s| match s {
        S::One(s) => vec![s],
        S::Many(v) => v,
    }))
}

/// An OS/architecture/variant triple, normalised as containerd does (x86_64 = amd64,
/// aarch64 = arm64, arm64/v8 = arm64, arm = arm/v7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
        .normalized()
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let bad = || {
            Error::InvalidArgument(format!(
                "{s:?}: unknown operating system or architecture: invalid argument"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(bad());
        }
        let host = Platform::host();
        let known_os = [
            "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
            "android",
        ];
        let p = match parts.as_slice() {
            [one] if known_os.contains(&one.to_lowercase().as_str()) => Platform {
                os: one.to_string(),
                ..host
            },
            [one] => Platform {
                os: host.os,
                architecture: one.to_string(),
                variant: None,
            },
            [os, arch] => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            },
            [os, arch, variant] => Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            },
            _ => return Err(bad()),
        };
        Ok(p.normalized())
    }

    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_lowercase();
        let (arch, variant) = match (
            self.architecture.to_lowercase().as_str(),
            self.variant.as_deref(),
        ) {
            ("i386", _) => ("386".to_owned(), None),
            ("x86_64" | "x86-64" | "amd64", v) => (
                "amd64".to_owned(),
                v.filter(|v| *v != "v1").map(str::to_owned),
            ),
            ("aarch64" | "arm64", Some("8" | "v8") | None) => ("arm64".to_owned(), None),
            ("aarch64" | "arm64", Some(v)) => ("arm64".to_owned(), Some(v.to_owned())),
            ("armhf", _) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", _) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm", None) => ("arm".to_owned(), Some("v7".to_owned())),
            ("arm", Some(v)) => (
                "arm".to_owned(),
                Some(if v.starts_with('v') {
                    v.to_owned()
                } else {
                    format!("v{v}")
                }),
            ),
            (a, v) => (a.to_owned(), v.filter(|v| !v.is_empty()).map(str::to_owned)),
        };
        self.architecture = arch;
        self.variant = variant;
        self
    }

    /// How well an image for `candidate` runs here: None when it cannot; higher is better.
    fn score(&self, candidate: &Platform) -> Option<u32> {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return None;
        }
        if self.variant == candidate.variant {
            return Some(100);
        }
        // 32-bit ARM runs older variants: arm/v7 accepts v6 and v5, preferring the newest.
        let level = |v: &Option<String>| v.as_deref()?.strip_prefix('v')?.parse::<u32>().ok();
        match (
            self.architecture.as_str(),
            level(&self.variant),
            level(&candidate.variant),
        ) {
            ("arm", Some(want), Some(have)) if have <= want => Some(have),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    let p = d.platform().as_ref()?;
    Some(
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }
        .normalized(),
    )
}

/// Picks the manifest for `want` from an index: the best variant match, the first entry among
/// equals (as the image spec asks). Entries without a platform (attestations) never match.
pub fn select_manifest<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    let want = want.clone().normalized();
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in index.manifests() {
        let Some(p) = descriptor_platform(d) else {
            continue;
        };
        if let Some(score) = want.score(&p) {
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, d));
            }
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        Error::NotFound(format!(
            "no matching manifest for {want} in the manifest list entries"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1";
    const D2: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

    fn docker_manifest() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":7023,"digest":"{D1}"}},
            "layers":[{{"mediaType":"{}","size":32654,"digest":"{D2}"}}]}}"#,
            mt::DOCKER_MANIFEST,
            mt::DOCKER_CONFIG,
            mt::DOCKER_LAYER_GZIP
        )
    }

    fn index(entries: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let ms: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, var))| {
                let v = var.map_or(String::new(), |v| format!(r#","variant":"{v}""#));
                let d = Digest::of(&[i as u8]);
                format!(r#"{{"mediaType":"{}","size":1,"digest":"{d}","platform":{{"os":"{os}","architecture":"{arch}"{v}}}}}"#, mt::DOCKER_MANIFEST)
            })
            .collect();
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
            mt::DOCKER_MANIFEST_LIST,
            ms.join(",")
        );
        parse_index(doc.as_bytes()).unwrap()
    }

    #[test]
    fn parses_docker_and_oci_documents() {
        let m = parse_manifest(docker_manifest().as_bytes()).unwrap();
        assert_eq!(descriptor_digest(m.config()).unwrap().to_string(), D1);
        assert_eq!(
            layer_compression(m.layers()[0].media_type().as_ref()).unwrap(),
            Compression::Gzip
        );
        check_image_manifest(&m, None).unwrap();
        // No mediaType field: detected from the structure.
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[]}}"#,
            mt::OCI_CONFIG
        );
        assert!(matches!(
            parse_document(oci.as_bytes(), None).unwrap(),
            Document::Manifest(_)
        ));
        let mixed = docker_manifest();
        assert!(parse_document(mixed.as_bytes(), Some(mt::OCI_MANIFEST)).is_ok());
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse_document(idx.as_bytes(), Some(mt::OCI_INDEX)).unwrap(),
            Document::Index(_)
        ));
    }

    #[test]
    fn refuses_ambiguous_or_unsupported_documents() {
        let m = docker_manifest();
        assert!(parse_document(m.as_bytes(), Some(mt::DOCKER_MANIFEST_LIST)).is_err());
        let both = format!(
            r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[]}}"#,
            mt::OCI_CONFIG
        );
        assert!(parse_document(both.as_bytes(), None).is_err());
        assert!(parse_document(both.as_bytes(), Some(mt::OCI_MANIFEST)).is_err());
        let s1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(parse_document(s1.as_bytes(), None)
            .unwrap_err()
            .to_string()
            .contains("schema 1"));
        let bad_digest = m.replace(D2, "sha512:abcd");
        assert!(parse_manifest(bad_digest.as_bytes()).is_err());
        assert!(layer_compression("application/vnd.cncf.helm.chart.content.v1.tar+gzip").is_err());
    }

    #[test]
    fn docker_config_view() {
        let json = format!(
            r#"{{"architecture":"arm64","variant":"v8","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"Hostname":"","Cmd":"sh","Entrypoint":null,"Env":["PATH=/bin"],"WorkingDir":"/w",
              "User":"1000","ExposedPorts":{{"80/tcp":{{}}}},"Volumes":{{"/data":{{}}}},"Labels":{{"a":"b"}},
              "StopSignal":"SIGTERM","Healthcheck":{{"Test":["CMD","true"],"Interval":1000000000}}}},
            "container_config":{{"Cmd":["/bin/sh"]}},"docker_version":"24.0.0",
            "rootfs":{{"type":"layers","diff_ids":["{D1}","{D2}"]}},"history":null}}"#
        );
        let c = ImageConfig::parse(json.as_bytes()).unwrap();
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(cc.entrypoint, None);
        assert_eq!(cc.working_dir.as_deref(), Some("/w"));
        assert_eq!(cc.user.as_deref(), Some("1000"));
        assert!(cc.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert_eq!(
            cc.healthcheck.as_ref().unwrap().interval,
            Some(1_000_000_000)
        );
        assert!(cc.extra.contains_key("Hostname"));
        assert!(c.extra.contains_key("container_config"));
        assert_eq!(c.docker_version.as_deref(), Some("24.0.0"));
        assert!(c.history.is_empty());
        assert_eq!(c.platform().to_string(), "linux/arm64");
        assert_eq!(c.chain_ids().len(), 2);
        // Round trip keeps the fields it does not model.
        let again = ImageConfig::parse(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"other","diff_ids":[]}}"#).is_err());
        let m = parse_manifest(docker_manifest().as_bytes()).unwrap();
        let err = check_image_manifest(&m, Some(&c)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layers from manifest don't match image configuration"
        );
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let ids = chain_ids(&[D1.parse().unwrap(), D2.parse().unwrap()]);
        assert_eq!(ids[0].to_string(), D1);
        // printf 'D1 D2' | sha256sum
        assert_eq!(
            ids[1].hex(),
            "c3191d32a37d7159b2e30830937d2e30268ad6c375a773a8994911a3aba9b93f"
        );
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn platform_selection() {
        let idx = index(&[
            ("unknown", "unknown", None),
            ("linux", "amd64", None),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("linux", "amd64", None),
        ]);
        let pick = |p: &str| {
            let d = select_manifest(&idx, &Platform::parse(p).unwrap()).unwrap();
            idx.manifests().iter().position(|x| x == d).unwrap()
        };
        assert_eq!(pick("linux/amd64"), 1, "first of equals");
        assert_eq!(pick("linux/x86_64"), 1);
        assert_eq!(pick("linux/arm64"), 4);
        assert_eq!(pick("linux/aarch64/v8"), 4);
        assert_eq!(pick("linux/arm/v7"), 3);
        assert_eq!(pick("linux/arm"), 3);
        assert_eq!(pick("linux/arm/v8"), 3, "newest variant it can run");
        assert_eq!(pick("linux/arm/v6"), 2);
        let err = select_manifest(&idx, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        assert!(select_manifest(&idx, &Platform::parse("linux/arm/v5").unwrap()).is_err());
        assert_eq!(Platform::parse("linux").unwrap().os, "linux");
        assert!(Platform::parse("a/b/c/d").is_err());
        assert_eq!(Platform::host().os, "linux");
    }
}
