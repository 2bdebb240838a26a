"""tinySNN hardware in the loop: the board protocol, transports, firmware builds and boards.

Modules: ``protocol`` (host side of docs/protocol.md), ``transports`` (byte links),
``boards`` (board profiles, builds, launchers, memory fit), ``plugin`` (hook registrations).
"""

__version__ = "0.1.0"
