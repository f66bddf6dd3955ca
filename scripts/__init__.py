"""Helper scripts for make targets."""
