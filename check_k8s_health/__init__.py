"""check_k8s_health: a monitoring plugin for the Kubernetes API server health endpoints.

The version lives here, and only here: packaging reads it with ``attr:`` so that ``--version`` needs no
``importlib.metadata`` look-up at start-up.
"""

__version__ = "0.1.0"
