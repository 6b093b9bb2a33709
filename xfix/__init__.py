"""xfix: batch exposure correction and single-exposure HDR reconstruction."""

__version__ = "0.1.0"
