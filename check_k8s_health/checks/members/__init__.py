"""--members: the API servers the cluster lists, and the identity Leases of those the list forgot."""
