"""The REST API at ``/api/v1/``: OpenAlgo's v1 calls, answered by the bridge (DESIGN.md
section 5b), so that OpenAlgo's own clients work with their ``host`` set to the bridge.

:mod:`~bridge.api.routes` takes a call in (the key, the limits), :mod:`~bridge.api.orders`
turns order calls into signals and says what their ``status`` means, :mod:`~bridge.api.books`
reads Kotak's books, :mod:`~bridge.api.symbols` speaks OpenAlgo's symbol format.
"""

from bridge.api.routes import bp

__all__ = ["bp"]
