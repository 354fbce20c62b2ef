//! Test support: see [`crate::test_logs`].

pub(crate) use crate::test_logs::{capture, warnings};
