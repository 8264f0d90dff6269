"""What every layer may use: the error kinds and their exit codes, the record type, one-line text, the one deadline."""
