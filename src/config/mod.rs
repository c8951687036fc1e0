//! `paritygate.toml`: loading, validation and compilation into comparison plans.

pub mod model;
