"""--webhooks, --aggregated-apis: what the health endpoints cannot see."""
