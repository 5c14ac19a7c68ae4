//! Conduit SDK (skeleton).
