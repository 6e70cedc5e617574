"""A visual model builder for PyTorch: the pure-Python core (no UI)."""
