"""headway: offline-first course progress for learning apps.

Record progress on the device first (it never goes backwards), answer "my courses" offline,
sync in bulk with Sunbird's course service when the network returns. Everything here is the
UniFFI-generated module `headway.headway.headway` (the Rust library's API, documented in
`bindings/README.md`), with one speed-up installed: arguments are serialized into a Python
buffer and copied into Rust memory once (see `_buffer`).

At exit, `shutdown()` runs (registered with `atexit`): headway's threads stop calling event
listeners and token providers before the interpreter finalizes, since CPython would end such
a thread with an unwind that aborts the process (exit 134).
"""

import atexit as _atexit

from ._buffer import install as _install_buffering
from .headway import *  # noqa: F401,F403 (the package's API is the generated module's)
from .headway import headway as _generated  # maturin's layout: headway/headway/headway.py

_install_buffering(_generated)
# atexit runs before the interpreter finalizes, after non-daemon threads are joined: the calls
# in flight into listeners can still take the GIL, later ones are not started.
_atexit.register(_generated.shutdown)
