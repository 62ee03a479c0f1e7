"""lower stage: a compressed module → `torch.export` → XNNPACK → a cached `.pte` with its manifest."""
