"""The replay family's storage: shared-memory arrays, the recoverable lock, the sum-tree, and the
prioritized transition (Ape-X) and sequence (R2D2) replays built on them."""
