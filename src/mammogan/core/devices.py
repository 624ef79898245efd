"""Start TensorFlow quietly: one line naming the device instead of the CUDA stub messages of every load, and
no grappler notice when a training step is first compiled.

TensorFlow's C++ libraries print "Could not find cuda drivers", "failed call to cuInit", oneDNN and
absl notices to file descriptor 2 while they load, before any log level applies. `start_tensorflow`
loads them with that descriptor redirected to a temporary file, drops the known start-up notices and
passes every other line through, so a real error still reaches the user.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

# Start-up notices of TensorFlow's native libraries that say nothing the device line does not.
START_UP_NOISE = (
    "absl::InitializeLog()", "cudart_stub.cc", "cuda_platform.cc", "cuda_dnn.cc", "cuda_fft.cc", "cuda_blas.cc",
    "cpu_feature_guard.cc", "To enable the following instructions", "port.cc:153] oneDNN custom operations",
    "computation_placer.cc", "Unable to register cu",
)


# Grappler's remapper declining to fuse some convolution + bias + activation gradients: harmless, yet printed as an
# error line (E0000 ... meta_optimizer.cc) when a training step is first compiled, e.g. with spectral norm.
COMPILE_NOISE = ("remapper failed: INVALID_ARGUMENT: Mutation::Apply error",)


@contextlib.contextmanager
def _native_stderr_filtered(noise: tuple[str, ...]) -> Iterator[None]:
    """Redirect fd 2 while native code runs; afterwards write back the lines that are not known `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not any(notice in line for notice in noise)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def quiet_compilation() -> contextlib.AbstractContextManager[None]:
    """Around the first call of a compiled training step: drops the remapper notice, passes every other line on."""
    return _native_stderr_filtered(COMPILE_NOISE)


def start_tensorflow() -> str:
    """Load TensorFlow and find its devices without the start-up notices; returns the line to show the user."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_filtered(START_UP_NOISE):
        import tensorflow as tf  # loaded here, inside the redirection, on purpose

        gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "no GPU found: running on CPU"
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return f"running on {len(gpus)} GPU(s): {', '.join(names)}"
