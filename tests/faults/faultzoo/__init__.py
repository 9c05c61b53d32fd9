"""The fault zoo's helpers: a test PKI (certs), loopback servers that
misbehave on purpose (servers), network namespaces with nftables rules
(netns), and the runner that puts one fault through `fapiao doctor` and
through curl and records both (doctor).

tests/e2e/conftest.py (the Server class that runs the real `fapiao init` and
`fapiao serve`) is loaded here under its own module name: a plain `import
conftest` would give whichever conftest.py pytest imported last, which
depends on the order of the command line."""
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
_NAME = "fapiao_e2e_conftest"

if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, REPO / "tests" / "e2e" / "conftest.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _mod
    _spec.loader.exec_module(_mod)

e2e = sys.modules[_NAME]
BIN = e2e.BIN
SLOW = e2e.SLOW
SANITIZED = e2e.SANITIZED
