"""Delivery: the worker loop, its HTTP transport and periodic maintenance."""
