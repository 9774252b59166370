"""Coordination between pool processes and hosts: extranonce1 prefix leases and the session-resume
directory, both in Redis. Stands above stratum (whose interfaces it implements) and shares (whose
Redis connection and key layout it uses)."""
