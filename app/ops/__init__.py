"""Operations doors: ``/metrics``, ``/readyz`` and ``flask doctor`` (an edge: it reads
every area to tell how the shop is doing, and no area imports it)."""
