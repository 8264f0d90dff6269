"""HTTP within the one deadline: the client (the only importer of requests), answers, parallel jobs, CPU starvation."""
