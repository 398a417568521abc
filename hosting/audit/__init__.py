"""The audit log: who ran which state-changing command, on which file, with what result."""
