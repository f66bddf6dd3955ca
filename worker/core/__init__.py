"""The core: what gemq is made of, without I/O (settings, key names, errors, job and batch models)."""
