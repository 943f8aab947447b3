//! Helpers shared by the integration tests (`mod common;` in each test file).

pub mod lab;
pub mod run;
pub mod tls;
