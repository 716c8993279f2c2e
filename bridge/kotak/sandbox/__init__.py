"""A local Kotak Neo that speaks Kotak's wire protocol: paper mode's broker and the tests'.

Public surface: :class:`Sandbox` (the broker, a WSGI app), :class:`SandboxAccount`,
:class:`SandboxConfig`, :class:`Rule` and :class:`Fault` (what to make it do),
:class:`SandboxServer` (serve it on a port) and :class:`InProcessAdapter` (call it in-process).
"""

from bridge.kotak.sandbox.adapter import InProcessAdapter
from bridge.kotak.sandbox.broker import Sandbox
from bridge.kotak.sandbox.conditions import Rule, SandboxAccount, SandboxConfig
from bridge.kotak.sandbox.faults import Fault
from bridge.kotak.sandbox.server import SandboxServer
from bridge.kotak.sandbox.state import MemoryStateStore, SqliteStateStore

__all__ = [
    "Fault",
    "InProcessAdapter",
    "MemoryStateStore",
    "Rule",
    "Sandbox",
    "SandboxAccount",
    "SandboxConfig",
    "SandboxServer",
    "SqliteStateStore",
]
