//! What the pages of the people area (users, roles, mail users, backups, the queue and the
//! audit log) share: turning a form into the API's JSON body (so the API's own
//! deserialisation and validation run), showing the API's enums and times, and reading
//! the empty fields of a filter form as absent.
//!
//! It decides nothing: every check is the API handler's.

use crate::api::Problem;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The API body `T` from `value` (the form's fields); a body the API type refuses is a 400
/// with serde's reason, as the API would answer it.
pub fn body<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_json::from_value(value).map_err(|e| Problem::bad_request(format!("invalid form: {e}")))
}

/// How the API writes an enum value (`record_level`, `deactivated`).
pub fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// `Some(text)` unless the field was left empty.
pub fn given(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`; `-` for none.
pub fn when(secs: Option<u64>) -> String {
    super::render::when(secs.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_words() {
        assert_eq!(when(Some(0)), "-");
        assert_eq!(when(Some(86_400 + 3_660)), "1970-01-02 01:01 UTC");
        assert_eq!(
            word(&crate::store::AccountType::RecordLevel),
            "record_level"
        );
        assert_eq!(given(&Some("  ".into())), None);
    }
}
