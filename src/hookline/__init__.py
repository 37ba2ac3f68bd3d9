"""hookline: a self-hosted webhook platform with a Svix-compatible API."""

__version__ = "0.1.0"
