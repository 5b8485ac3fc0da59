//! Bulk requests: each item succeeds or fails on its own.

use crate::values::FieldError;

/// One item of a bulk request: its position, what it is called (for the answer), and its new id
/// or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem<Id> {
    pub index: usize,
    pub label: Option<String>,
    pub outcome: Result<Id, FieldError>,
}

/// Validates each draft on its own: one result per draft, in order, and the valid values.
pub(crate) fn validate_each<D, T, Id>(
    drafts: Vec<D>,
    label: impl Fn(&D) -> Option<String>,
    mut validate: impl FnMut(D) -> Result<T, FieldError>,
    id: impl Fn(&T) -> Id,
) -> (Vec<BulkItem<Id>>, Vec<T>) {
    let mut valid = Vec::new();
    let results = drafts
        .into_iter()
        .enumerate()
        .map(|(index, draft)| {
            let label = label(&draft);
            let outcome = validate(draft).map(|value| {
                let id = id(&value);
                valid.push(value);
                id
            });
            BulkItem { index, label, outcome }
        })
        .collect();
    (results, valid)
}
