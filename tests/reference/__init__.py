"""Independent reference server built from the vendor documentation alone (see docserver.py)."""
