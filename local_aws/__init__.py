"""The AWS side of template.yaml, made real on one machine: moto server, and the queues, tables
and secrets the template declares, created there from the template itself (not restated)."""
