//! `docker image prune` and the image part of `docker system df`.

use std::collections::{HashMap, HashSet};

use super::{DeleteResponse, ImageStore};
use crate::error::Result;
use crate::{ChainId, Digest};

/// What [`ImageStore::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// `Untagged:` and `Deleted:` lines, images then layers, as Docker prints them.
    pub deleted: Vec<DeleteResponse>,
    /// Unpacked bytes of the layers removed.
    pub space_reclaimed: u64,
}

/// Disk usage of images and container snapshots (`docker system df`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Number of images.
    pub images: usize,
    /// Images used by at least one container.
    pub active_images: usize,
    /// Unpacked bytes of every distinct layer of every image (each layer counted once).
    pub images_size: u64,
    /// Bytes of the distinct layers shared by two images or more.
    pub shared_size: u64,
    /// What removing every unused image would free: `images_size` minus the bytes only active
    /// images use (Docker's computation).
    pub reclaimable: u64,
    /// Container snapshots: (key, bytes their writes use).
    pub containers: Vec<(String, u64)>,
    /// Sum of the containers' usage.
    pub containers_size: u64,
}

impl ImageStore {
    /// `docker image prune`: deletes dangling images (untagged, unused by containers, without
    /// child images), or with `all` every image no container uses (tags included); repeats
    /// while deleting a child leaves its parent prunable. Then collects unused layers and
    /// blobs.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let used: HashSet<Digest> = self
            .meta
            .containers()?
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        loop {
            let images = self.meta.images()?;
            let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
            let mut victims = Vec::new();
            for img in &images {
                if used.contains(&img.id) || parents.contains(&img.id) {
                    continue;
                }
                if !all && !self.meta.refs_of(&img.id)?.is_empty() {
                    continue;
                }
                victims.push(img.id.clone());
            }
            if victims.is_empty() {
                break;
            }
            for id in victims {
                let deleted = self.meta.delete_image(&id)?;
                for r in &deleted.untagged {
                    report
                        .deleted
                        .push(DeleteResponse::Untagged(r.familiar_string()));
                }
                report.deleted.push(DeleteResponse::Deleted(id.to_string()));
            }
        }
        let sizes: HashMap<ChainId, u64> = self
            .meta
            .layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let snap = self.snapshotter.as_ref();
        let gc = crate::gc::gc(&self.content, &self.meta, &mut |c| {
            snap.remove_layer(&c.to_string())
        })?;
        for c in gc.layers {
            report.space_reclaimed += sizes.get(&c).copied().unwrap_or(0);
            report.deleted.push(DeleteResponse::Deleted(c.to_string()));
        }
        Ok(report)
    }

    /// `docker system df` numbers for images and containers.
    pub fn df(&self) -> Result<DiskUsage> {
        let images = self.meta.images()?;
        let containers = self.meta.containers()?;
        let used: HashSet<&Digest> = containers.iter().map(|(_, i)| i).collect();
        let sizes: HashMap<ChainId, u64> = self
            .meta
            .layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.size))
            .collect();
        let mut uses: HashMap<&ChainId, usize> = HashMap::new();
        for img in &images {
            let distinct: HashSet<&ChainId> = img.chain_ids.iter().collect();
            for c in distinct {
                *uses.entry(c).or_default() += 1;
            }
        }
        let size_of = |c: &ChainId| sizes.get(c).copied().unwrap_or(0);
        let mut du = DiskUsage {
            images: images.len(),
            ..Default::default()
        };
        for (c, n) in &uses {
            du.images_size += size_of(c);
            if *n > 1 {
                du.shared_size += size_of(c);
            }
        }
        let mut active_unique = 0;
        for img in &images {
            if !used.contains(&img.id) {
                continue;
            }
            du.active_images += 1;
            let distinct: HashSet<&ChainId> = img.chain_ids.iter().collect();
            active_unique += distinct
                .into_iter()
                .filter(|c| uses.get(c).copied().unwrap_or(0) <= 1)
                .map(size_of)
                .sum::<u64>();
        }
        du.reclaimable = du.images_size.saturating_sub(active_unique);
        for (key, _) in &containers {
            let Ok(u) = self.snapshotter.usage(key) else {
                continue;
            };
            du.containers_size += u;
            du.containers.push((key.clone(), u));
        }
        Ok(du)
    }
}
