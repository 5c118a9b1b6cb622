//! The standard plugins, built from `plugins/` by `build.rs` and embedded.

include!(concat!(env!("OUT_DIR"), "/standard_plugins.rs"));
