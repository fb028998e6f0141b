//! Errors of the engine crate.

/// A record batch that does not have the shape of a contract schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("column `{column}` is missing")]
    MissingColumn { column: String },
    #[error("column `{column}` has type {found}, which is not the contract's")]
    WrongType { column: String, found: String },
    #[error("column `{column}`, row {row}: null where a value is required")]
    NullValue { column: String, row: usize },
    #[error("column `{column}`, row {row}: {message}")]
    BadValue { column: String, row: usize, message: String },
}
