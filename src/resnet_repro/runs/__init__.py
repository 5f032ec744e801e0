"""A run directory: its recipe (identity, refusal of another), its lock, and where its numbers come from
(commit, machine, versions). Below training, use and the report, which all read or write runs."""
