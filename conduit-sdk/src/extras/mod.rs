//! What the API means beyond what its spec can say, as additions to the
//! generated layer (oxide.rs keeps these in `sdk/src/extras/` too).

pub(crate) mod custom_tools;
