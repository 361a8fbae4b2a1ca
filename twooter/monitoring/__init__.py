"""Starting the monitoring engines from the configuration in deploy/: Prometheus, and rsyslog for log shipping.

Each module writes an engine's configuration from its template in deploy/
into a directory of its own and starts the engine as a process, returning
it (its pid is `.pid`), so tests and `twooter cluster` run exactly the
configuration a real machine gets. Nothing in the app depends on this.
"""
