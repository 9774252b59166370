"""The several-hosts lab: network namespaces as hosts, a Redis Cluster across them, HAProxy in front
(PROXY v2) and a fleet on real public addresses. tests/hosts runs it; benchmarks/bench_failover.py
times its failovers. Root and Linux network namespaces only."""
