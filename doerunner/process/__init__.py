"""Processes: starting a command in its own session (spawn), capturing its output and
writing its logs (capture), and killing every process it left (tree, procfs)."""
