"""votesvc: a public voting microservice built for heavy traffic."""

__version__ = "0.2.0"
__all__ = ["__version__"]
