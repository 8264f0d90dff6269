"""--write-probe, --write-lease: one write through the API server into etcd, renewing the plugin's own Lease."""
