"""The pay ledger: piece rates for completed work, active time, the minimum hourly guarantee."""
