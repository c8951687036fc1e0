//! Capture readers (WIP).
