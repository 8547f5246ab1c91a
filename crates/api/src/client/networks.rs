//! /networks/... endpoints.

use super::http::{path_escape, Body};
use super::{Client, Query, Result};
use crate::network::{Network, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest, NetworkPruneResponse};

impl Client {
    pub fn network_create(&self, req: &NetworkCreateRequest) -> Result<NetworkCreateResponse> {
        self.post_json("/networks/create", Query::new(), Some(req))
    }

    pub fn network_list(&self, filters: &[(String, String)]) -> Result<Vec<Network>> {
        self.get_json("/networks", Query::new().filters(filters))
    }

    pub fn network_inspect_raw(&self, name: &str) -> Result<Vec<u8>> {
        self.get_raw(&format!("/networks/{}", path_escape(name)), Query::new())
    }

    pub fn network_remove(&self, name: &str) -> Result<()> {
        self.request("DELETE", &format!("/networks/{}", path_escape(name)), Query::new(), Body::Empty)?;
        Ok(())
    }

    pub fn network_prune(&self, filters: &[(String, String)]) -> Result<NetworkPruneResponse> {
        self.post_json("/networks/prune", Query::new().filters(filters), None::<&()>)
    }

    pub fn network_connect(&self, network: &str, req: &NetworkConnectRequest) -> Result<()> {
        let body = serde_json::to_vec(req).map_err(|e| super::Error::Decode(e.to_string()))?;
        self.request("POST", &format!("/networks/{}/connect", path_escape(network)), Query::new(), Body::Json(body))?;
        Ok(())
    }

    pub fn network_disconnect(&self, network: &str, req: &NetworkDisconnectRequest) -> Result<()> {
        let body = serde_json::to_vec(req).map_err(|e| super::Error::Decode(e.to_string()))?;
        self.request("POST", &format!("/networks/{}/disconnect", path_escape(network)), Query::new(), Body::Json(body))?;
        Ok(())
    }
}
