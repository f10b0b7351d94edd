"""Ray Tune sweeps: the search-space grammar (:mod:`.space`) and the sweep job (:mod:`.sweep`)."""
