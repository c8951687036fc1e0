//! `diff --schemas DIR`: writer schemas from files named `ID.avsc`, read once.

use crate::core::avro::{AvroError, SchemaLookup, WriterSchema};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The schemas of a directory, by id.
#[derive(Debug, Default)]
pub struct SchemaDir {
    by_id: HashMap<u32, Arc<WriterSchema>>,
}

impl SchemaDir {
    /// Read every `ID.avsc` of `dir`; another file name, or a schema that does not parse, is an
    /// error naming the file.
    pub fn read(dir: &Path) -> Result<SchemaDir, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut by_id = HashMap::new();
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(id) = name.strip_suffix(".avsc") else {
                continue;
            };
            let id: u32 = id.parse().map_err(|_| {
                format!(
                    "{}: schema files are named ID.avsc (a schema id)",
                    path.display()
                )
            })?;
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let schema =
                WriterSchema::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            by_id.insert(id, Arc::new(schema));
        }
        Ok(SchemaDir { by_id })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl SchemaLookup for SchemaDir {
    fn schema(&self, id: u32) -> Result<Arc<WriterSchema>, AvroError> {
        self.by_id
            .get(&id)
            .cloned()
            .ok_or(AvroError::UnknownSchema(id))
    }
}
