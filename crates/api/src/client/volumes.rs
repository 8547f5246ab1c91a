//! /volumes/... endpoints.

use super::http::{path_escape, Body};
use super::{Client, Query, Result};
use crate::volume::{Volume, VolumeCreateRequest, VolumeList, VolumePruneReport};

impl Client {
    pub fn volume_create(&self, req: &VolumeCreateRequest) -> Result<Volume> {
        self.post_json("/volumes/create", Query::new(), Some(req))
    }

    pub fn volume_list(&self, filters: &[(String, String)]) -> Result<VolumeList> {
        self.get_json("/volumes", Query::new().filters(filters))
    }

    pub fn volume_inspect_raw(&self, name: &str) -> Result<Vec<u8>> {
        self.get_raw(&format!("/volumes/{}", path_escape(name)), Query::new())
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        self.request("DELETE", &format!("/volumes/{}", path_escape(name)), Query::new().flag("force", force), Body::Empty)?;
        Ok(())
    }

    pub fn volume_prune(&self, filters: &[(String, String)]) -> Result<VolumePruneReport> {
        self.post_json("/volumes/prune", Query::new().filters(filters), None::<&()>)
    }
}
