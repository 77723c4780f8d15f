"""Host-side helpers the vessel gateway, the shore relay and the simulators share.

Owns: the clock protocol (``clock``), typed TOML config loading (``config``), key files (``keyfiles``),
the one airtime cost estimator (``estimate``) and the installed version (``VERSION``).
Must not import ``gateway``, ``shore``, ``simulators`` or the command line: they import it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("seabridge")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0"
