//! The audit log as the admin side uses it: [`crate::audit`] (entries, the rotated file) and
//! [`record`], which writes an entry off the async threads.

pub use crate::audit::*;

/// Records `e` in the audit log of `app` (off the async threads).
pub async fn record(app: &crate::app::SharedApp, e: Entry) {
    let app = app.clone();
    let _ = super::respond::blocking(move || app.admin.audit.record(&app.root, &e)).await;
}
