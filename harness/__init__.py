"""harness: load, China-network and failover tests for a Supabase + LiveKit chat product.

Exit codes used by every command: 0 = every gate passed, 1 = a gate failed, 2 = invalid run or error.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
