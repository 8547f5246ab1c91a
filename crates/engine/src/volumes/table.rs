//! Volume records in the engine's redb database: one transaction per change.

use redb::{Database, ReadableTable, TableDefinition};

use super::VolumeRecord;
use crate::error::Result;

const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

pub(super) fn get(db: &Database, name: &str) -> Result<Option<VolumeRecord>> {
    let tx = db.begin_read()?;
    let t = match tx.open_table(VOLUMES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let found = t.get(name)?;
    Ok(match found {
        Some(v) => Some(serde_json::from_slice(v.value())?),
        None => None,
    })
}

pub(super) fn all(db: &Database) -> Result<Vec<VolumeRecord>> {
    let tx = db.begin_read()?;
    let t = match tx.open_table(VOLUMES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(serde_json::from_slice(v.value())?);
    }
    Ok(out)
}

pub(super) fn put(db: &Database, rec: &VolumeRecord) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let bytes = serde_json::to_vec(rec)?;
        tx.open_table(VOLUMES)?.insert(rec.name.as_str(), bytes.as_slice())?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn delete(db: &Database, name: &str) -> Result<()> {
    let tx = db.begin_write()?;
    tx.open_table(VOLUMES)?.remove(name)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        assert_eq!(all(&db).unwrap(), vec![]);
        assert_eq!(get(&db, "x").unwrap(), None);
        let r = VolumeRecord {
            name: "data".into(),
            driver: "local".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            options: Default::default(),
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        put(&db, &r).unwrap();
        assert_eq!(get(&db, "data").unwrap(), Some(r.clone()));
        assert_eq!(all(&db).unwrap(), vec![r]);
        delete(&db, "data").unwrap();
        assert_eq!(get(&db, "data").unwrap(), None);
    }
}
