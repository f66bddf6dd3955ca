"""gemq command-line client."""
