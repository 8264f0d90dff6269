"""The command line into frozen settings: the servers, TLS and credentials it names, kubeconfig, in-cluster."""
