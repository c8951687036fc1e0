//! The checkpoint transaction (WIP).
