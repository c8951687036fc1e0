//! Field-level explanations (WIP).
