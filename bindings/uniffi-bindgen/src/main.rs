//! `uniffi-bindgen`, pinned to the workspace's UniFFI version: `uniffi-bindgen generate
//! --library target/debug/libheadway_ffi.so --language kotlin --out-dir DIR`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
