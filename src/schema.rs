//! The published JSON Schema: generated from the plan types, and used to validate plans.

use crate::plan::Plan;

/// The schema as pretty JSON, byte for byte what `schemas/plan.schema.json` holds.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Plan);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}
