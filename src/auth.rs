//! The admin side's credentials: the login check, sessions and CSRF tokens ([`session`]) and
//! the throttling of failed logins and API tokens ([`throttle`]). No HTTP routes here (they
//! are `admin`'s); the state lives in [`crate::app::App`].

pub mod session;
pub mod throttle;
