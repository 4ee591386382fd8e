"""Django integration of the motofinai_consistency PostgreSQL extension.

The extension enforces optimistic locking and knows the consistency rules;
this package gives the Motofinai app the Python names it already calls
(``motofinai_consistency.concurrency``) and ``manage.py check_consistency``.
"""

__version__ = "0.1.0"

# The oldest extension version whose SQL functions this package calls.
REQUIRED_EXTENSION_VERSION = "0.1.0"
