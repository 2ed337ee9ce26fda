//! The facts of one device that the admin filter, sort and fleet summary look at
//! (`admin::query`), borrowed from an index entry or a device view. Defined here, beside the
//! index that fills it, so the state engine does not depend on the admin pages.

/// What the filter and the sort look at of one device.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a> {
    /// The state file's name without `.xml`.
    pub key: &'a str,
    /// The state file is no usable device state.
    pub unreadable: bool,
    pub sn: &'a str,
    pub device_type: &'a str,
    pub name: &'a str,
    /// The address the device reported.
    pub realip: &'a str,
    /// The address the request came from.
    pub ip: &'a str,
    pub phase: &'a str,
    /// Comma-separated.
    pub classes: &'a str,
    /// Comma-separated.
    pub environments: &'a str,
    pub firmware: &'a str,
    pub firmware_requested: &'a str,
    pub bootcode: &'a str,
    pub bootcode_requested: &'a str,
    pub seen: i64,
    pub backup: Option<i64>,
    pub certstat: Option<&'a str>,
    /// A CSR waits for signature (CSR file, no signed certificate).
    pub csr_waiting: bool,
    /// A signed certificate waits for the device.
    pub signed_waiting: bool,
    /// The device reported a certificate request error (state or error file).
    pub cert_error: bool,
}
