//! Capture replay (WIP).
