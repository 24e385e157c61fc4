//! Schema adjustments for the `GatewaySync` CRD (feature `schema`): fields that parse with a
//! default on the command line but are required in a cluster.

/// Adds `field` to the object schema's `required` list.
fn require(schema: &mut schemars::Schema, field: &str) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let required = object
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = required.as_array_mut()
        && !list.iter().any(|v| v == field)
    {
        list.push(field.into());
        list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
}

/// `spec.sync.profiles` is required (and non-empty) in a cluster.
pub(crate) fn require_profiles(schema: &mut schemars::Schema) {
    require(schema, "profiles");
}

/// A Secret reference names its key in a cluster.
pub(crate) fn require_key(schema: &mut schemars::Schema) {
    require(schema, "key");
}
