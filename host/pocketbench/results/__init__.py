"""results stage: the append-only run store, its migrations, history across runs, comparisons."""
