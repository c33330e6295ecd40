// filled by build.rs
