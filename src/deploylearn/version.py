"""The package version, in one place (imported by the package and by run provenance)."""

__version__ = "0.1.0"
