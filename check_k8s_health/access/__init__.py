"""Where a server's credentials and TLS material come from: files, kubeconfig, exec plugins, in-cluster."""
