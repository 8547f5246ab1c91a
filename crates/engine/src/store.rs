//! Containers and their names in redb: every change is one ACID transaction, so a kill -9 at any
//! point leaves either the old or the new record, never half of one.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::record::Record;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");

pub struct Store {
    db: Database,
}

pub fn name_in_use(name: &str, id: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(CONTAINERS)?;
        tx.open_table(NAMES)?;
        tx.commit()?;
        Ok(Store { db })
    }

    /// The database, for the other tables the engine keeps beside containers (volumes).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    pub fn all(&self) -> Result<Vec<Record>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Adds a new container, refusing a name already taken.
    pub fn insert(&self, rec: &Record) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut names = tx.open_table(NAMES)?;
            if let Some(other) = names.get(rec.name.as_str())? {
                return Err(name_in_use(&rec.name, other.value()));
            }
            names.insert(rec.name.as_str(), rec.id.as_str())?;
            let bytes = serde_json::to_vec(rec)?;
            tx.open_table(CONTAINERS)?.insert(rec.id.as_str(), bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces a container's record; the name must not have changed (see `rename`).
    pub fn put(&self, rec: &Record) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let bytes = serde_json::to_vec(rec)?;
            tx.open_table(CONTAINERS)?.insert(rec.id.as_str(), bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Renames in one transaction: the record and both name entries.
    pub fn rename(&self, rec: &Record, old: &str) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut names = tx.open_table(NAMES)?;
            if let Some(other) = names.get(rec.name.as_str())? {
                return Err(name_in_use(&rec.name, other.value()));
            }
            names.remove(old)?;
            names.insert(rec.name.as_str(), rec.id.as_str())?;
            let bytes = serde_json::to_vec(rec)?;
            tx.open_table(CONTAINERS)?.insert(rec.id.as_str(), bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn remove(&self, rec: &Record) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(NAMES)?.remove(rec.name.as_str())?;
            tx.open_table(CONTAINERS)?.remove(rec.id.as_str())?;
        }
        tx.commit()?;
        Ok(())
    }
}
