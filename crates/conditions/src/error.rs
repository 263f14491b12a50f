//! The validation error: where in the condition the mistake is, and what is wrong.

/// A condition that failed validation.
///
/// Displays as `<path>: <message>`, where the path is JSON-pointer-like and leads from the root
/// of the condition to the offending value (`/all/1/any/0/op`); the root itself is `/`.
/// Validation errors are permanent: the same JSON always fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConditionError {
    path: String,
    message: String,
}

impl ConditionError {
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
        ConditionError {
            path,
            message: message.into(),
        }
    }

    /// The JSON-pointer-like path to the mistake (`/all/1/op`; `/` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong there, and what would be accepted.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_path_colon_message() {
        let e = ConditionError::new("/all/0/op", "unknown operator");
        assert_eq!(e.to_string(), "/all/0/op: unknown operator");
        assert_eq!(e.path(), "/all/0/op");
        assert_eq!(e.message(), "unknown operator");
    }

    #[test]
    fn root_path_is_a_slash() {
        let e = ConditionError::new("", "expected an object");
        assert_eq!(e.to_string(), "/: expected an object");
    }
}
