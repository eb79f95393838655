"""Cloud distribution (云分销): regional agents, ordering merchants and 级差."""
