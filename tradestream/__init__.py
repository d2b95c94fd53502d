"""Application shell: settings, logging, the command line and the process supervisor."""
