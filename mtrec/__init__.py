"""mtrec: multi-scenario, multi-task recommendation, taught and benchmarked.

Importing mtrec with ``MTREC_OFFLINE=1`` in the environment (as ``make test`` and ``make tour``
do) installs a guard that refuses every socket connection outside loopback, so notebooks and tests
prove they make no network access after ``mtrec data fetch``.

Two sources of output noise are quieted here, once, for every notebook and script: tqdm's
notebook bars warn "IProgress not found" when ipywidgets is absent (mtrec and the Hugging Face
libraries it loads fall back to plain text bars anyway), and PyTorch's profiler prints Kineto's
``USDT:`` trace lines to stderr (``KINETO_LOG_LEVEL``; a value the user set wins).

On Linux, glibc is asked to keep freed buffers of up to 32 MiB for reuse
(:func:`mtrec.utils.keep_freed_memory`): a CPU training step then stops paying a page fault per
page of every large activation, at every step. ``MTREC_KEEP_FREED_MEMORY=0`` leaves glibc's
defaults.
"""

import os
import warnings

os.environ.setdefault("KINETO_LOG_LEVEL", "6")
with warnings.catch_warnings():  # the first import of tqdm.autonotebook is the one that warns
    warnings.filterwarnings("ignore", message="IProgress not found")
    import tqdm.autonotebook  # noqa: F401

from mtrec.utils import env_info, get_device, keep_freed_memory, set_seed

keep_freed_memory()

__version__ = "0.3.0"
__all__ = ["__version__", "env_info", "get_device", "set_seed"]

if os.environ.get("MTREC_OFFLINE") == "1":
    from mtrec.utils import block_network

    block_network()
