//! /_ping, /version, /info, /events, /system/df.

use super::http::{Body, Response};
use super::{Client, Query, Result};
use crate::system::{Info, Version};

impl Client {
    pub fn ping(&self) -> Result<()> {
        let _ = self.request("GET", "/_ping", Query::new(), Body::Empty)?.bytes()?;
        Ok(())
    }

    pub fn version(&self) -> Result<Version> {
        self.get_json("/version", Query::new())
    }

    pub fn version_raw(&self) -> Result<Vec<u8>> {
        self.get_raw("/version", Query::new())
    }

    pub fn info(&self) -> Result<Info> {
        self.get_json("/info", Query::new())
    }

    pub fn info_raw(&self) -> Result<Vec<u8>> {
        self.get_raw("/info", Query::new())
    }

    /// The event stream: one JSON message per line; it ends at `until` or never.
    pub fn events(&self, since: Option<&str>, until: Option<&str>, filters: &[(String, String)]) -> Result<Response> {
        let q = Query::new().opt("since", since).opt("until", until).filters(filters);
        self.request("GET", "/events", q, Body::Empty)
    }

    pub fn system_df_raw(&self) -> Result<Vec<u8>> {
        self.get_raw("/system/df", Query::new())
    }
}
