"""trialsift's extraction side: registry records and protocol text in, the spec's JSON out."""
