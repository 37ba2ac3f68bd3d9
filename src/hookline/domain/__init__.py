"""Pure rules of hookline: no I/O, no ``await``, no SQL; time comes from an injected clock."""
