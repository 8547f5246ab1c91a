//! Image operations as the API exposes them: the image store's, plus events and the checks
//! that need the containers (an image in use).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use berth_image::store::LoadedImage;

use crate::error::Result;
use crate::Engine;

impl Engine {
    fn image_event(&self, action: &str, id: &str, name: Option<&str>) {
        let mut attrs = BTreeMap::new();
        if let Some(n) = name {
            attrs.insert("name".to_owned(), n.to_owned());
        }
        self.events.emit("image", action, id, attrs);
    }

    pub fn load_images(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        let loaded = self.images.load(reader)?;
        for l in &loaded {
            let name = l.tags.first().map(|t| t.familiar_string());
            self.image_event("load", &l.id.to_string(), name.as_deref());
        }
        Ok(loaded)
    }

    pub fn save_images(&self, names: &[String], writer: impl Write) -> Result<()> {
        self.images.save(names, writer)?;
        for n in names {
            self.image_event("save", n, Some(n));
        }
        Ok(())
    }

    pub fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let target = if tag.is_empty() { repo.to_owned() } else { format!("{repo}:{tag}") };
        let r = berth_image::Reference::parse_normalized(&target)?;
        self.images.tag(source, &r)?;
        let id = self.images.meta().resolve(source)?;
        self.image_event("tag", &id.to_string(), Some(&r.familiar_string()));
        Ok(())
    }

    /// `docker rmi`: the store refuses an image a container uses unless forced.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<berth_image::store::DeleteResponse>> {
        let out = self.images.remove(name, force)?;
        for d in &out {
            match d {
                berth_image::store::DeleteResponse::Untagged(u) => self.image_event("untag", u, Some(u)),
                berth_image::store::DeleteResponse::Deleted(x) => self.image_event("delete", x, None),
            }
        }
        Ok(out)
    }
}
