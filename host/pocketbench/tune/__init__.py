"""tune stage: search compression recipes with the device in the loop (Optuna), return the front."""
