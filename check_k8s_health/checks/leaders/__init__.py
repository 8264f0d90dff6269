"""--leaders, --leader-lease: the leader Leases of the control-plane loops (kube-scheduler, kube-controller-manager)."""
