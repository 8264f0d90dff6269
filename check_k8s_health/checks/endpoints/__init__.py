"""/livez, /readyz, /healthz: each endpoint's verbose answer, its failed sub-checks and their reasons."""
