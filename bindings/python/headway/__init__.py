"""headway: offline-first course progress for learning apps.

Record progress on the device first (it never goes backwards), answer "my courses" offline,
sync in bulk with Sunbird's course service when the network returns. Everything here is the
UniFFI-generated module `headway.headway.headway` (the Rust library's API, documented in
`bindings/README.md`), with one speed-up installed: arguments are serialized into a Python
buffer and copied into Rust memory once (see `_buffer`).
"""

from ._buffer import install as _install_buffering
from .headway import *  # noqa: F401,F403 (the package's API is the generated module's)
from .headway import headway as _generated  # maturin's layout: headway/headway/headway.py

_install_buffering(_generated)
