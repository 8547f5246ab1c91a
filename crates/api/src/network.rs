//! Networks (`/networks/*`), in Docker's JSON shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container_config::{nullable, EndpointSettings};

/// `POST /networks/create`. Fields Berth does not act on (IPv6, swarm scope) are accepted and
/// checked where Docker would refuse them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub check_duplicate: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    #[serde(deserialize_with = "nullable")]
    pub scope: String,
    #[serde(deserialize_with = "nullable")]
    pub internal: bool,
    #[serde(deserialize_with = "nullable")]
    pub attachable: bool,
    #[serde(deserialize_with = "nullable")]
    pub ingress: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<Ipam>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    #[serde(deserialize_with = "nullable")]
    pub driver: String,
    pub options: Option<BTreeMap<String, String>>,
    pub config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(deserialize_with = "nullable", rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `201` answer to a create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateResponse {
    pub id: String,
    pub warning: String,
}

/// A container's endpoint in a network's inspect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `GET /networks/{id}` (and each entry of `GET /networks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    /// API 1.48 (Berth speaks 1.47): read from newer daemons, never sent.
    #[serde(rename = "EnableIPv4", default, skip_serializing)]
    pub enable_ipv4: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigFrom,
    pub config_only: bool,
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFrom {
    pub network: String,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    #[serde(deserialize_with = "nullable")]
    pub container: String,
    pub endpoint_config: Option<EndpointSettings>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnectRequest {
    #[serde(deserialize_with = "nullable")]
    pub container: String,
    #[serde(deserialize_with = "nullable")]
    pub force: bool,
}

/// `POST /networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkPruneResponse {
    pub networks_deleted: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_takes_the_python_sdks_nulls() {
        let body = r#"{"Name": "n", "Driver": "bridge", "Options": {}, "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.1.0.0/24", "IPRange": null, "Gateway": "10.1.0.1", "AuxiliaryAddresses": null}], "Options": null}, "CheckDuplicate": null, "Internal": null, "Labels": {"a": "b"}, "EnableIPv6": null, "Attachable": null, "Scope": null, "Ingress": null}"#;
        let r: NetworkCreateRequest = serde_json::from_str(body).unwrap();
        let pool = &r.ipam.as_ref().unwrap().config.as_ref().unwrap()[0];
        assert_eq!((r.name.as_str(), r.scope.as_str(), r.internal, pool.ip_range.as_str(), pool.gateway.as_str()), ("n", "", false, "", "10.1.0.1"));
        let c: NetworkConnectRequest = serde_json::from_str(r#"{"Container": "x", "EndpointConfig": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}}}"#).unwrap();
        assert_eq!(c.endpoint_config.unwrap().aliases.unwrap(), ["db"]);
    }
}
