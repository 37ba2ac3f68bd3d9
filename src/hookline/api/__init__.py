"""The HTTP surface: a Svix v1 wire-compatible API on a small ASGI core."""
