"""Data: readers, the synthetic fiber generator and the `prepare` importers."""
