"""Processes: starting a command in its own session (spawn), capturing its output (capture,
logwriter), and killing every process it left (tree, procfs)."""
