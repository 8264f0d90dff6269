"""--etcd-quota: the size of etcd's database, from the API server's /metrics, against etcd's quota."""
