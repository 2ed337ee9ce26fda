//! Why a device request is not answered by the script or the upload ([`DeviceError`]), each
//! with PHP's answer text (a comment line a device logs) and the HTTP status.

use crate::answer::comment_safe;
use crate::respond::text;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// A refusal of `update.php` or `update-migrate.php`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The configuration cannot be read (PHP's message).
    #[error("{0}")]
    Config(String),
    /// An argument breaks a bound (`request::check_args`).
    #[error("{0}")]
    BadArgs(String),
    /// A body over its limit.
    #[error("{what} larger than {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    /// The body ended early.
    #[error("incomplete request body")]
    IncompleteBody,
    /// An upload refused by the trust rules (`upload_trust`).
    #[error("{0}")]
    UploadRefused(String),
    /// What the device uploaded could not be stored durably.
    #[error("{0}")]
    NotStored(String),
    /// The blocking pool is gone or a step panicked.
    #[error("internal error")]
    Internal,
    /// `mode=show|status|ui` belong to the admin pages.
    #[error("for user interface functions, call admin/admin.php instead")]
    AdminMode,
    /// Another `mode=`.
    #[error("unknown cmd={0}")]
    UnknownMode(String),
    /// `update-migrate.php` without `<migrate url=…>`.
    #[error("update-migrate.php: no <migrate url=\"…\"/> configured")]
    NoMigrate,
}

impl DeviceError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            DeviceError::Config(_) | DeviceError::AdminMode | DeviceError::UnknownMode(_) => {
                StatusCode::OK
            }
            DeviceError::BadArgs(_) | DeviceError::IncompleteBody => StatusCode::BAD_REQUEST,
            DeviceError::TooLarge { .. } | DeviceError::NotStored(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            DeviceError::UploadRefused(_) => StatusCode::FORBIDDEN,
            DeviceError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            DeviceError::NoMigrate => StatusCode::NOT_FOUND,
        }
    }

    /// The answer's text, as PHP (or, where PHP has none, the project) words it.
    pub fn body(&self) -> String {
        let said = comment_safe(&self.to_string());
        match self {
            DeviceError::AdminMode => self.to_string(),
            DeviceError::TooLarge { .. }
            | DeviceError::IncompleteBody
            | DeviceError::NotStored(_) => format!("# {said} - nothing stored\r\n"),
            DeviceError::NoMigrate => format!("# {self}\r\n"),
            _ => format!("# {said} - exit\r\n"),
        }
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        text(self.status(), self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_php_texts_and_statuses() {
        let cases = [
            (
                DeviceError::Config("no config".into()),
                200,
                "# no config - exit\r\n",
            ),
            (
                DeviceError::BadArgs("sn too long".into()),
                400,
                "# sn too long - exit\r\n",
            ),
            (
                DeviceError::TooLarge {
                    what: "request body",
                    limit: 10,
                },
                413,
                "# request body larger than 10 bytes - nothing stored\r\n",
            ),
            (
                DeviceError::IncompleteBody,
                400,
                "# incomplete request body - nothing stored\r\n",
            ),
            (
                DeviceError::UploadRefused("not trusted".into()),
                403,
                "# not trusted - exit\r\n",
            ),
            (
                DeviceError::NotStored("state too large".into()),
                413,
                "# state too large - nothing stored\r\n",
            ),
            (DeviceError::Internal, 500, "# internal error - exit\r\n"),
            (
                DeviceError::AdminMode,
                200,
                "for user interface functions, call admin/admin.php instead",
            ),
            (
                DeviceError::UnknownMode("x".into()),
                200,
                "# unknown cmd=x - exit\r\n",
            ),
            (
                DeviceError::NoMigrate,
                404,
                "# update-migrate.php: no <migrate url=\"…\"/> configured\r\n",
            ),
        ];
        for (e, status, body) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.body(), body, "{e:?}");
        }
    }
}
