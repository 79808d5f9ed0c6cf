"""Reconciliation: Vercel's view of each installation against the partner table (docs/operations.md, "Reconcile")."""
