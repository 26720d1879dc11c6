"""mtrec: multi-scenario, multi-task recommendation, taught and benchmarked.

Importing mtrec with ``MTREC_OFFLINE=1`` in the environment (as ``make test`` and ``make tour``
do) installs a guard that refuses every socket connection outside loopback, so notebooks and tests
prove they make no network access after ``mtrec data fetch``.
"""

import os

from mtrec import _compat
from mtrec.utils import env_info, get_device, set_seed

__version__ = "0.2.0"
__all__ = ["__version__", "env_info", "get_device", "set_seed"]

_compat.install()

if os.environ.get("MTREC_OFFLINE") == "1":
    from mtrec.utils import block_network

    block_network()
