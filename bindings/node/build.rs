//! Node-API addons resolve `napi_*` symbols from the Node process that loads them: napi-build
//! sets the linker flags that allow it.
fn main() {
    napi_build::setup();
}
